"""What happens in Intune when the certificates app stores or deletes a certificate (certs.signals),
and what its pages say about the tenant connection (certs.hooks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from certs import hooks, lifecycle
from certs.imports import Entry
from certs.models import Certificate, GraphState
from certs.tests.importing import add_key, directory_user, pfx_for
from graph import records
from graph.models import TenantConnection, UploadRecord
from portal.audit import Actor
from portal.models import ScopeTag

pytestmark = pytest.mark.django_db

ALICE = "alice@contoso.example"


def _import(upn: str = ALICE) -> Certificate:
    directory_user(upn)
    item = lifecycle.certificate_import(
        Actor.system("test"),
        entry=Entry("a.pfx", pfx_for(upn, "pw"), "pw", upn, "smimeEncryption"),
        key=add_key(),
        tags=[ScopeTag.default()],
    )
    assert item.certificate is not None, item.problem_message
    return item.certificate


def test_a_certificate_imported_while_the_tenant_is_connected_is_queued_for_upload_after_the_commit(
    connected: TenantConnection, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        certificate = _import()
    assert not UploadRecord.objects.exists()

    for callback in callbacks:
        callback()

    record = UploadRecord.objects.get()
    assert (record.certificate_id, record.state) == (certificate.pk, UploadRecord.State.QUEUED)
    certificate.refresh_from_db()
    assert certificate.graph_state == GraphState.PENDING


def test_a_certificate_imported_without_a_tenant_waits_in_the_portal(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        certificate = _import()

    assert not UploadRecord.objects.exists()
    certificate.refresh_from_db()
    assert certificate.graph_state == GraphState.NOT_UPLOADED


def test_deleting_a_certificate_in_intune_queues_its_deletion_there(
    make_certificate: Callable[..., Certificate], django_capture_on_commit_callbacks: Any
) -> None:
    certificate = make_certificate()
    Certificate.objects.filter(pk=certificate.pk).update(graph_state=GraphState.SYNCED)
    certificate.refresh_from_db()
    graph_id = records.graph_id(certificate)

    with django_capture_on_commit_callbacks() as callbacks:
        lifecycle.certificate_delete(Actor.system("test"), certificate=certificate)

    record = UploadRecord.objects.get(graph_id=graph_id)
    assert (record.state, record.certificate_id) == (UploadRecord.State.DELETING, None)
    assert len(callbacks) == 1


def test_removing_expired_certificates_queues_the_deletion_of_each_in_intune(
    make_certificate: Callable[..., Certificate],
) -> None:
    from django.utils import timezone

    expired = [make_certificate(), make_certificate()]
    Certificate.objects.update(graph_state=GraphState.SYNCED, not_after=timezone.now())
    graph_ids = {records.graph_id(c) for c in Certificate.objects.all()}

    lifecycle.remove_expired(Actor.system("test"), certificates=Certificate.objects.all())

    assert not Certificate.objects.filter(pk__in=[c.pk for c in expired]).exists()
    deleting = UploadRecord.objects.filter(state=UploadRecord.State.DELETING)
    assert set(deleting.values_list("graph_id", flat=True)) == graph_ids


def test_the_import_pages_know_whether_the_tenant_is_connected(request: pytest.FixtureRequest) -> None:
    assert hooks.delivery_connected() is False
    request.getfixturevalue("connected")
    assert hooks.delivery_connected() is True

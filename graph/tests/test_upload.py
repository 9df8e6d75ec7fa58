from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import transaction

from certs.models import Certificate, GraphState
from devtools.emulator.server import Emulator
from graph import records, uploads
from graph.client import GraphClient
from graph.models import UploadRecord
from graph.tests.factories import graph_body
from portal.lib.refusal import Refused
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def _upn(emulator: Emulator, needle: str) -> str:
    return str(
        next(
            u["userPrincipalName"] for u in emulator.state.users.values() if needle in u["userPrincipalName"]
        )
    )


def test_an_upload_creates_the_record_reads_it_back_and_marks_the_certificate_synced(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    certificate = make_certificate(_upn(emulator, "o'neil"))
    record = uploads.queue_upload(certificate)
    assert uploads.upload(record.pk, client=portal_graph) == "synced"
    certificate.refresh_from_db()
    record.refresh_from_db()
    assert certificate.graph_state == GraphState.SYNCED
    assert record.graph_id == f"{certificate.user.object_id.hex}-{certificate.thumbprint}"
    assert record.graph_id in emulator.state.pfx
    assert record.read_back["encryptedPfxBlob"] == "AA=="
    assert record.read_back["encryptedPfxPassword"] == ""
    assert AuditEvent.objects.filter(activity="Upload certificate to Intune", result="success").exists()


def test_a_guest_with_ext_in_the_upn_is_uploaded(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    certificate = make_certificate(_upn(emulator, "#EXT#"))
    record = uploads.queue_upload(certificate)
    assert uploads.upload(record.pk, client=portal_graph) == "synced"


def test_a_retry_after_the_record_landed_reads_it_back_instead_of_posting_again(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    certificate = make_certificate()
    # An earlier attempt created the record, then its worker died before saying so.
    portal_graph.create_pfx(records.certificate_body(certificate))
    record = uploads.queue_upload(certificate)
    assert uploads.upload(record.pk, client=portal_graph) == "synced"
    assert emulator.state.stats.posts == 1
    assert emulator.state.stats.conflicts == 0
    assert len(emulator.state.pfx) == 1


def test_running_the_same_upload_twice_posts_once(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    record = uploads.queue_upload(make_certificate())
    assert uploads.upload(record.pk, client=portal_graph) == "synced"
    assert uploads.upload(record.pk, client=portal_graph) == "not-claimed"
    UploadRecord.objects.filter(pk=record.pk).update(state=UploadRecord.State.QUEUED)
    assert uploads.upload(record.pk, client=portal_graph) == "synced"
    assert emulator.state.stats.posts == 1


def test_a_record_that_differs_in_intune_is_patched(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    certificate = make_certificate()
    body = records.certificate_body(certificate) | {"intendedPurpose": "smimeSigning"}
    portal_graph.create_pfx(body)
    record = uploads.queue_upload(certificate)
    assert uploads.upload(record.pk, client=portal_graph) == "synced"
    assert emulator.state.stats.patches == 1
    assert emulator.state.pfx[record.graph_id]["intendedPurpose"] == "smimeEncryption"


def test_a_body_graph_refuses_marks_the_certificate_failed_with_the_request_ids(
    portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    certificate = make_certificate("left.company@contoso.com")
    record = uploads.queue_upload(certificate)
    assert uploads.upload(record.pk, client=portal_graph) == "failed"
    record.refresh_from_db()
    certificate.refresh_from_db()
    assert certificate.graph_state == GraphState.FAILED
    assert record.error["status"] == 400
    assert record.error["request_id"] and record.error["client_request_id"]
    assert "left.company@contoso.com" in record.error["body"]
    assert "request-id" in certificate.graph_error


def test_throttling_that_outlasts_the_client_leaves_the_upload_queued_for_a_retry(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    emulator.config.write_limit, emulator.config.write_window, emulator.config.retry_after = 1, 60.0, "none"
    portal_graph.create_pfx(graph_body(next(iter(emulator.state.users.values()))["userPrincipalName"]))
    portal_graph.max_attempts = 2
    record = uploads.queue_upload(make_certificate())
    with pytest.raises(uploads.RetryLater):
        uploads.upload(record.pk, client=portal_graph)
    record.refresh_from_db()
    assert record.state == UploadRecord.State.QUEUED
    assert record.claim is None and record.attempts == 1
    assert record.error["status"] == 429


def test_deleting_a_certificate_deletes_it_in_intune_and_checks_it_is_gone(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    certificate = make_certificate()
    record = uploads.queue_upload(certificate)
    uploads.upload(record.pk, client=portal_graph)
    with transaction.atomic():
        uploads.certificate_deleted(certificate)
        certificate.delete()
    record.refresh_from_db()
    assert record.state == UploadRecord.State.DELETING
    assert uploads.delete(record.pk, client=portal_graph) == "deleted"
    record.refresh_from_db()
    assert record.state == UploadRecord.State.DELETED
    assert record.graph_id not in emulator.state.pfx
    assert emulator.state.stats.deletes == 1


def test_the_sweep_hands_work_of_a_dead_worker_back_to_the_queue(
    portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    from django.utils import timezone

    record = uploads.queue_upload(make_certificate())
    UploadRecord.objects.filter(pk=record.pk).update(
        claim="5f0e4a56-0000-0000-0000-000000000000", claimed_at=timezone.now()
    )
    assert uploads.upload(record.pk, client=portal_graph) == "not-claimed"
    assert uploads.sweep(claimed_before=timezone.now()) == 1
    assert uploads.upload(record.pk, client=portal_graph) == "synced"


def test_a_delete_answered_204_that_did_not_delete_is_tried_again(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    certificate = make_certificate()
    record = uploads.queue_upload(certificate)
    uploads.upload(record.pk, client=portal_graph)
    with transaction.atomic():
        uploads.certificate_deleted(certificate)
        certificate.delete()
    emulator.config.ignored_deletes = 1
    with pytest.raises(uploads.RetryLater, match="still lists"):
        uploads.delete(record.pk, client=portal_graph)
    assert record.graph_id in emulator.state.pfx
    assert uploads.delete(record.pk, client=portal_graph) == "deleted"
    assert record.graph_id not in emulator.state.pfx


def test_the_sweep_closes_a_run_whose_worker_died(connected: object) -> None:
    import datetime as dt

    from django.utils import timezone

    from graph.models import ReconcileRun, SyncRun

    old = timezone.now() - dt.timedelta(hours=2)
    stuck = ReconcileRun.objects.create(started_at=old)
    SyncRun.objects.create(started_at=old)
    current = ReconcileRun.objects.create()
    uploads.sweep()
    stuck.refresh_from_db()
    current.refresh_from_db()
    assert stuck.state == ReconcileRun.State.FAILED and "worker stopped" in stuck.error["summary"]
    assert SyncRun.objects.get().state == SyncRun.State.FAILED
    assert current.state == ReconcileRun.State.RUNNING


def test_certificates_of_users_intune_does_not_know_are_flagged_not_uploaded(
    emulator: Emulator, make_certificate: Callable[..., Certificate], connected: object
) -> None:
    from directory.models import DirectoryUser, UserSource

    known = make_certificate(_upn(emulator, "o'neil"))
    imported = make_certificate(_upn(emulator, "#EXT#"))
    DirectoryUser.objects.filter(pk=imported.user_id).update(source=UserSource.CSV)
    imported.refresh_from_db()

    assert uploads.queue_uploads([known.pk, imported.pk]) == 1
    assert list(UploadRecord.objects.values_list("certificate_id", flat=True)) == [known.pk]
    imported.refresh_from_db()
    assert imported.graph_state == GraphState.NOT_UPLOADED
    assert imported.graph_error.startswith("Not uploaded: Intune does not know this user")
    with pytest.raises(Refused) as refused:
        uploads.queue_upload(imported)
    assert refused.value.code == "user_not_in_entra"
    assert UploadRecord.objects.count() == 1


def test_a_user_gone_from_entra_or_removed_is_not_uploaded_to_either(
    emulator: Emulator, make_certificate: Callable[..., Certificate], connected: object
) -> None:
    from django.utils import timezone

    from directory.models import DirectoryUser

    flagged = make_certificate(_upn(emulator, "o'neil"))
    removed = make_certificate(_upn(emulator, "#EXT#"))
    DirectoryUser.objects.filter(pk=flagged.user_id).update(missing_from_entra_at=timezone.now())
    DirectoryUser.objects.filter(pk=removed.user_id).update(removed_at=timezone.now())
    assert uploads.queue_uploads([flagged.pk, removed.pk]) == 0
    assert not UploadRecord.objects.exists()

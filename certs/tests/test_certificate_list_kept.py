"""The certificate list is rendered once and kept for admins of the same scope: an admin never gets a
list rendered for someone who sees more, and a change shows on the next view."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from certs import lifecycle
from certs.models import Certificate, EncryptionKey
from certs.tests.importing import add_key
from certs.tests.test_certificate_list import add_certificates
from portal import audit, summaries
from portal.audit import Actor
from portal.models import AuditEvent, Role, RoleAssignment, ScopeTag, User

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_mfa_step(settings: Any) -> None:
    settings.PORTAL_ENFORCE_MFA = False
    settings.PORTAL_FRAGMENT_MAX_AGE = 60


@pytest.fixture
def key(db: None) -> EncryptionKey:
    return add_key()


@pytest.fixture
def europe(key: EncryptionKey) -> ScopeTag:
    """Four certificates: the first two carry the Europe tag only, the others Default."""
    add_certificates(key, 4)
    tag = ScopeTag.objects.create(name="Europe")
    for cert in Certificate.objects.order_by("pk")[:2]:
        cert.scope_tags.set([tag])
    return tag


def reader(name: str, tags: list[ScopeTag]) -> User:
    """An admin who reads certificates (not the directory, which would show every certificate) over ``tags``."""
    role, _ = Role.objects.get_or_create(
        name="Certificate reader", defaults={"permissions": ["certificates.read"]}
    )
    user = User.objects.create_user(email=f"{name}@contoso.example", password="x" * 20)
    assignment = RoleAssignment.objects.create(role=role, name=f"Certificates for {name}")
    assignment.members.add(user)
    assignment.scope_tags.set(tags)
    return user


def _listed(user: User, *, htmx: bool = False) -> set[str]:
    client = Client()
    client.force_login(user)
    response = client.get("/certificates/", headers={"HX-Request": "true"} if htmx else {})
    assert response.status_code == 200
    return set(re.findall(r'data-thumbprint="([0-9A-F]+)"', response.content.decode()))


def _tagged(tag: ScopeTag) -> set[str]:
    return set(Certificate.objects.filter(scope_tags=tag).values_list("thumbprint", flat=True))


def test_an_admin_scoped_to_a_tag_never_sees_the_list_kept_for_an_admin_who_sees_everything(
    make_admin: Callable[..., User], europe: ScopeTag
) -> None:
    everything = _listed(reader("all", []))
    assert len(everything) == 4
    scoped = reader("europe", [europe])
    assert _listed(scoped) == _tagged(europe)
    assert _listed(scoped, htmx=True) == _tagged(europe)


def test_an_admin_who_sees_everything_never_gets_the_list_kept_for_a_scoped_admin(
    make_admin: Callable[..., User], europe: ScopeTag
) -> None:
    assert _listed(reader("europe", [europe])) == _tagged(europe)
    assert len(_listed(reader("all", []))) == 4
    assert len(_listed(make_admin("help_desk_operator", tags=[europe]))) == 4  # reads every user


def test_admins_of_the_same_scope_share_one_rendering_of_the_list(
    make_admin: Callable[..., User], europe: ScopeTag
) -> None:
    first, second = reader("first", [europe]), reader("second", [europe])
    assert _listed(first) == _tagged(europe)
    client = Client()
    client.force_login(second)
    client.get("/certificates/")
    with CaptureQueriesContext(connection) as queries:
        client.get("/certificates/")
    assert not any("certs_certificate" in q["sql"] for q in queries.captured_queries)


def test_a_deleted_certificate_leaves_the_list_at_once(
    make_admin: Callable[..., User], europe: ScopeTag
) -> None:
    admin = make_admin("help_desk_operator")
    assert len(_listed(admin)) == 4
    gone = Certificate.objects.order_by("pk").first()
    assert gone is not None
    lifecycle.certificate_delete(Actor.system("test"), certificate=gone)
    assert gone.thumbprint not in _listed(admin) and len(_listed(admin)) == 3


def test_a_certificate_added_shows_on_the_list_at_once(
    make_admin: Callable[..., User], key: EncryptionKey
) -> None:
    admin = make_admin("help_desk_operator")
    add_certificates(key, 2)
    assert len(_listed(admin)) == 2
    add_certificates(key, 1)  # written with an audit event, as every change is
    with transaction.atomic():
        audit.record(
            Actor.system("test"),
            activity="Import certificates",
            category="Certificates",
            operation=AuditEvent.Operation.CREATE,
            resources=[],
        )
    assert len(_listed(admin)) == 3


def test_an_event_committed_after_a_later_one_still_moves_the_clock(db: None) -> None:
    def event(pk: int) -> None:
        AuditEvent.objects.create(
            pk=pk,
            actor_name="test",
            activity="Something",
            operation="Action",
            category="Certificates",
            correlation_id=uuid.uuid4(),
        )

    event(50)
    before = summaries.change_clock()
    # An event whose transaction took a lower id but committed after the one above.
    event(40)
    after = summaries.change_clock()
    assert before is not None and after is not None
    assert after[0] == before[0] == 50 and after != before

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from allauth.mfa.models import Authenticator
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from portal import access, summaries
from portal.backends import signed_in
from portal.models import AuditEvent, ScopeTag, User

pytestmark = pytest.mark.django_db


def _event() -> AuditEvent:
    return AuditEvent.objects.create(
        activity="Test change",
        operation="Update",
        category="Test",
        actor_name="test",
        correlation_id=uuid.uuid4(),
    )


def test_the_signed_in_admin_their_roles_and_the_change_clock_are_read_in_one_query(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag]
) -> None:
    _event()
    admin = make_admin("help_desk_operator", tags=[make_tag("Berlin"), make_tag("Paris")])
    with CaptureQueriesContext(connection) as queries:
        user = signed_in(admin.pk)
        assert user is not None
        roles = access.role_names(user)
        grant = access.grant(user, "profiles.read")
        needs_mfa = access.requires_mfa(user)
    assert len(queries) == 1
    fresh = User.objects.get(pk=admin.pk)
    assert (roles, grant, needs_mfa) == (
        access.role_names(fresh),
        access.grant(fresh, "profiles.read"),
        access.requires_mfa(fresh),
    )
    assert grant.tag_ids is not None and len(grant.tag_ids) == 2
    assert user.email == admin.email and user.password == admin.password
    assert user._portal_change_clock == summaries.change_clock()  # type: ignore[attr-defined]


def test_an_admin_without_roles_is_read_with_no_roles(make_admin: Callable[..., User]) -> None:
    assert not AuditEvent.objects.exists()
    user = signed_in(make_admin().pk)
    assert user is not None
    assert access.role_names(user) == [] and not access.has_perm(user, "profiles.read")
    assert user._portal_change_clock is None  # type: ignore[attr-defined]


def test_an_unknown_or_malformed_user_id_reads_no_admin(make_admin: Callable[..., User]) -> None:
    admin = make_admin()
    assert signed_in(admin.pk + 1000) is None
    assert signed_in("not-a-number") is None


def test_whether_the_admin_has_an_authenticator_app_is_read_with_them(
    make_admin: Callable[..., User],
) -> None:
    admin = make_admin("intune_administrator")
    Authenticator.objects.create(user=admin, type=Authenticator.Type.RECOVERY_CODES, data={})
    assert signed_in(admin.pk)._portal_has_totp is False  # type: ignore[union-attr]
    Authenticator.objects.create(user=admin, type=Authenticator.Type.TOTP, data={"secret": "x"})
    assert signed_in(admin.pk)._portal_has_totp is True  # type: ignore[union-attr]


def test_a_page_keeps_the_clock_read_with_the_admin_but_a_change_reads_it_after_its_change(
    make_admin: Callable[..., User],
) -> None:
    _event()
    admin = make_admin("intune_administrator")
    factory = RequestFactory()
    page, change = factory.get("/"), factory.post("/")
    page_user, change_user = signed_in(admin.pk), signed_in(admin.pk)
    assert page_user is not None and change_user is not None
    page.user, change.user = page_user, change_user
    before = summaries.change_clock()
    _event()
    # A GET makes no change: the clock read with the admin is as good as a later one, and saves a query.
    with CaptureQueriesContext(connection) as queries:
        assert summaries.request_clock(page) == before
    assert len(queries) == 0
    # What a POST renders after its change must not be keyed on the clock from before it.
    assert summaries.request_clock(change) == summaries.change_clock() != before

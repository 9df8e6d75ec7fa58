"""Inviting administrators: no self sign-up; the invitee sets a password through a one-time link."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from portal import access, services
from portal.audit import Actor
from portal.lib.refusal import Refused
from portal.models import AuditEvent, Role, RoleAssignment, User

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a new and long passphrase 42"


@pytest.fixture(autouse=True)
def _no_mfa_prompt(settings: Any) -> None:
    settings.PORTAL_ENFORCE_MFA = False


@pytest.fixture
def role_admin(make_admin: Callable[..., User]) -> User:
    return make_admin("intune_role_administrator")


@pytest.fixture
def readers(built_in_roles: dict[str, Role], role_admin: User) -> RoleAssignment:
    return services.assignment_create(
        actor=Actor.for_user(role_admin), role=built_in_roles["intune_role_administrator"], name="Role admins"
    )


def _link(message: mail.EmailMessage) -> str:
    found = re.search(r"https?://\S+/password/reset/key/\S+", str(message.body))
    assert found
    return found.group(0)


def test_an_invitation_creates_an_admin_without_a_password_and_mails_a_link(
    role_admin: User, readers: RoleAssignment, django_capture_on_commit_callbacks: Any
) -> None:
    client = Client()
    client.force_login(role_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin_invite"),
            {
                "email": "New.Admin@Contoso.example",
                "display_name": "New Admin",
                "assignments": [readers.pk],
                "is_superuser": "on",
                "is_staff": "on",
            },
        )
    assert response.status_code == 302
    user = User.objects.get(email="new.admin@contoso.example")
    assert not user.has_usable_password()
    assert not user.is_superuser and not user.is_staff
    assert user.invited_by == role_admin
    assert access.has_perm(user, "roles.read")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new.admin@contoso.example"]
    assert "/accounts/password/reset/key/" in _link(mail.outbox[0])
    event = AuditEvent.objects.get(activity="Invite administrator")
    assert event.category == "Role" and event.operation == "create"
    changes = {c["field"]: c["new"] for c in event.resources[0]["changes"]}
    assert changes["email"] == "new.admin@contoso.example"
    assert changes["role_assignments"] == ["Intune Role Administrator: Role admins"]


def test_the_invitee_sets_a_password_with_the_link_once(
    role_admin: User, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.SITE_URL = "http://testserver"
    with django_capture_on_commit_callbacks(execute=True):
        services.admin_invite(actor=Actor.for_user(role_admin), email="ann@contoso.example")
    link = _link(mail.outbox[0]).removeprefix("http://testserver")
    invitee = Client()
    form_page = invitee.get(link, follow=True)
    assert form_page.status_code == 200
    set_password_url = form_page.redirect_chain[-1][0]
    done = invitee.post(set_password_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302
    user = User.objects.get(email="ann@contoso.example")
    assert user.check_password(NEW_PASSWORD)
    # The link is spent once the password is set.
    again = Client().get(link, follow=True)
    assert "password1" not in again.text


def test_an_existing_address_is_refused(role_admin: User) -> None:
    client = Client()
    client.force_login(role_admin)
    response = client.post(reverse("admin_invite"), {"email": role_admin.email.upper()})
    assert response.status_code == 200 and "already exists" in response.text
    with pytest.raises(Refused):
        services.admin_invite(actor=Actor.for_user(role_admin), email=role_admin.email)


def test_an_invitation_cannot_hand_out_permissions_the_inviter_lacks(
    role_admin: User, built_in_roles: dict[str, Role], django_capture_on_commit_callbacks: Any
) -> None:
    admins = RoleAssignment.objects.create(role=built_in_roles["intune_administrator"], name="Admins")
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(Refused, match="certificates"),
    ):
        services.admin_invite(
            actor=Actor.for_user(role_admin), email="eve@contoso.example", assignments=[admins]
        )
    assert not User.objects.filter(email="eve@contoso.example").exists()
    assert not AuditEvent.objects.exists()
    assert mail.outbox == []


def test_a_pending_invitation_can_be_resent(
    role_admin: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        user = services.admin_invite(actor=Actor.for_user(role_admin), email="ann@contoso.example")
    client = Client()
    client.force_login(role_admin)
    assert "Invited" in client.get(reverse("admins")).text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin_resend_invite", args=[user.pk]))
    assert response.status_code == 302
    assert len(mail.outbox) == 2
    assert AuditEvent.objects.filter(activity="Resend administrator invitation").count() == 1


def test_a_help_desk_operator_cannot_invite(helpdesk: User) -> None:
    client = Client()
    client.force_login(helpdesk)
    assert client.post(reverse("admin_invite"), {"email": "x@contoso.example"}).status_code == 403
    assert not User.objects.filter(email="x@contoso.example").exists()

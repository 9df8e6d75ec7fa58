"""The audit log pages and Home's recent changes, through the test client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from portal import audit
from portal.models import AuditEvent, User

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_mfa_step(settings: Any) -> None:
    settings.PORTAL_ENFORCE_MFA = False


def _event(actor: audit.Actor, activity: str) -> AuditEvent:
    with transaction.atomic():
        return audit.record(
            actor,
            activity=activity,
            category="Certificates",
            operation=AuditEvent.Operation.ACTION,
            resources=[audit.resource(type="Certificate", id="1", name="alice@contoso.example")],
        )


@pytest.fixture
def events(intune_admin: User) -> None:
    _event(
        audit.Actor(user=intune_admin, name=intune_admin.email, type=AuditEvent.ActorType.USER),
        "Delete certificate",
    )
    _event(audit.Actor.system("Intune upload"), "Upload certificate to Intune")


def test_home_lists_what_administrators_changed_not_what_the_system_did(
    client: Client, intune_admin: User, events: None
) -> None:
    client.force_login(intune_admin)
    page = client.get(reverse("home")).content.decode()
    assert "Recent changes by administrators" in page
    assert "Delete certificate" in page and "Upload certificate to Intune" not in page


def test_the_audit_log_filters_by_actor_type(client: Client, intune_admin: User, events: None) -> None:
    client.force_login(intune_admin)
    system = client.get(reverse("audit_logs"), {"actor_type": "system"}).content.decode()
    assert "Upload certificate to Intune" in system and "Delete certificate" not in system
    response = client.get(reverse("audit_export"), {"actor_type": "user"})
    export = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert "Delete certificate" in export and "Upload certificate" not in export


def test_a_bad_filter_is_explained_not_a_500(client: Client, intune_admin: User) -> None:
    client.force_login(intune_admin)
    response = client.get(reverse("audit_logs"), {"start": "2026-02-01", "end": "2026-01-01"})
    assert response.status_code == 400 and "on or before the end date" in response.content.decode()


def test_an_admin_without_audit_access_is_refused(client: Client, make_admin: Callable[..., User]) -> None:
    client.force_login(make_admin(None))
    assert client.get(reverse("audit_logs")).status_code == 403

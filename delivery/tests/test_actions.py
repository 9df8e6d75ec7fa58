"""Retry failed and resend: what they change, who may, and the audit trail."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from connectors.models import ConnectorJob
from delivery.models import DeliveryState
from delivery.tests import builders as b
from portal.models import AuditEvent, ScopeTag, User
from profiles.models import DeliveryStatus
from profiles.tests import factories as f

pytestmark = pytest.mark.django_db


def _client(user: User, settings: object) -> Client:
    settings.PORTAL_ENFORCE_MFA = False  # type: ignore[attr-defined]
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    return client


def test_retry_failed_sends_a_profiles_failed_certificates_again_and_requeues_their_failed_jobs(
    make_admin: Callable[..., User], settings: object
) -> None:
    alice = f.user("alice@contoso.example")
    laptop, desktop = f.device("LAPTOP-1", alice), f.device("DESKTOP-1", alice)
    smime = b.profile("S/MIME encryption")
    cert = b.certificate(alice)
    job = b.failed_job(cert)
    failed = b.state(smime, laptop, cert, DeliveryStatus.ERROR, code="key_not_held", job=job)
    fine = b.state(smime, desktop, cert, DeliveryStatus.SUCCEEDED)
    manager = _client(make_admin("policy_and_profile_manager"), settings)

    response = manager.post(reverse("delivery:retry_failed", args=[smime.code]))

    assert response.status_code == 302
    failed.refresh_from_db()
    assert (failed.status, failed.error_code, failed.sent_at) == (DeliveryStatus.PENDING, "", None)
    job.refresh_from_db()
    assert (job.state, job.attempts, job.error) == (ConnectorJob.State.QUEUED, 0, "")
    fine.refresh_from_db()
    assert fine.status == DeliveryStatus.SUCCEEDED
    event = AuditEvent.objects.get(activity="Retry failed devices")
    assert event.resources[0]["id"] == str(smime.code)
    assert event.resources[0]["changes"][0]["new"] == 1


def test_retry_failed_with_nothing_failed_changes_nothing_and_writes_no_event(
    make_admin: Callable[..., User], settings: object
) -> None:
    smime = b.profile("S/MIME encryption")
    manager = _client(make_admin("policy_and_profile_manager"), settings)

    response = manager.post(reverse("delivery:retry_failed", args=[smime.code]), follow=True)

    assert "No device is in Error for this profile." in response.content.decode()
    assert not AuditEvent.objects.filter(activity="Retry failed devices").exists()


def test_a_read_only_operator_may_neither_retry_nor_resend(
    make_admin: Callable[..., User], settings: object
) -> None:
    alice = f.user("alice@contoso.example")
    laptop = f.device("LAPTOP-1", alice)
    smime = b.profile("S/MIME encryption")
    row = b.state(smime, laptop, b.certificate(alice), DeliveryStatus.ERROR, code="install_failed")
    reader = _client(make_admin("read_only_operator"), settings)

    assert reader.post(reverse("delivery:retry_failed", args=[smime.code])).status_code == 403
    assert reader.post(reverse("delivery:resend", args=[laptop.device_id])).status_code == 403
    row.refresh_from_db()
    assert row.status == DeliveryStatus.ERROR
    assert not AuditEvent.objects.filter(category="Devices").exists()


def test_retry_needs_the_profiles_scope_tag(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], settings: object
) -> None:
    paris, oslo = make_tag("Paris"), make_tag("Oslo")
    alice = f.user("alice@contoso.example")
    oslo_profile = b.profile("Oslo S/MIME", oslo)
    b.state(oslo_profile, f.device("LAPTOP-1", alice), b.certificate(alice), DeliveryStatus.ERROR)
    paris_helpdesk = _client(make_admin("help_desk_operator", tags=[paris]), settings)

    response = paris_helpdesk.post(reverse("delivery:retry_failed", args=[oslo_profile.code]))

    assert response.status_code == 404
    assert DeliveryState.objects.get().status == DeliveryStatus.ERROR


def test_a_help_desk_operator_resends_to_one_device_only_in_the_profiles_of_their_scope(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], settings: object
) -> None:
    paris, oslo = make_tag("Paris"), make_tag("Oslo")
    alice = f.user("alice@contoso.example")
    laptop, phone = f.device("LAPTOP-1", alice), f.device("PHONE-1", alice)
    cert = b.certificate(alice)
    mine, theirs = b.profile("Paris S/MIME", paris), b.profile("Oslo S/MIME", oslo)
    on_laptop = b.state(mine, laptop, cert, DeliveryStatus.SUCCEEDED)
    other_scope = b.state(theirs, laptop, cert, DeliveryStatus.ERROR, code="install_failed")
    other_device = b.state(mine, phone, cert, DeliveryStatus.ERROR, code="install_failed")
    helpdesk = _client(make_admin("help_desk_operator", tags=[paris]), settings)
    page = reverse("directory:user", args=[alice.object_id])

    response = helpdesk.post(reverse("delivery:resend", args=[laptop.device_id]), {"next": page})

    assert response.status_code == 302 and response["Location"] == page
    on_laptop.refresh_from_db()
    assert (on_laptop.status, on_laptop.sent_at) == (DeliveryStatus.PENDING, None)
    other_scope.refresh_from_db()
    other_device.refresh_from_db()
    assert other_scope.status == DeliveryStatus.ERROR and other_device.status == DeliveryStatus.ERROR
    event = AuditEvent.objects.get(activity="Resend certificates to device")
    assert [r["name"] for r in event.resources] == ["LAPTOP-1", "Paris S/MIME"]
    assert event.scope_tags == {str(paris.pk): "Paris"}


def test_resend_goes_back_only_to_a_page_of_this_site(
    make_admin: Callable[..., User], settings: object
) -> None:
    alice = f.user("alice@contoso.example")
    laptop = f.device("LAPTOP-1", alice)
    b.state(b.profile("S/MIME"), laptop, b.certificate(alice))
    helpdesk = _client(make_admin("help_desk_operator"), settings)

    response = helpdesk.post(
        reverse("delivery:resend", args=[laptop.device_id]), {"next": "https://evil.example/"}
    )

    assert response["Location"] == reverse("directory:device", args=[laptop.device_id])

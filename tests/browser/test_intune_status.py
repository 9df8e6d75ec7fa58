"""Intune reports device statuses and certificate states; after a status sync started in a real browser
and carried out by a real worker, the profile's Device status and the user's page show them with
"source: Intune"."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from collections.abc import Callable

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.utils import timezone
from playwright.sync_api import Page, expect

from certs.models import Certificate, EncryptionKey
from conftest import wait_for
from devtools.emulator.server import Emulator
from directory.models import Device, DirectoryUser, Platform
from graph import connection, profile_sync
from graph.models import ProfileRecord, StatusSyncRun
from portal.audit import Actor
from portal.models import ScopeTag, User
from profiles import services
from profiles.services import ProfileDraft

pytestmark = pytest.mark.django_db(transaction=True)
SYSTEM = Actor.system("test")


def _scene(emulator: Emulator) -> tuple[str, DirectoryUser, Certificate]:
    """A profile in Intune, a user with a Windows device and a certificate, and Intune's reports on them."""
    stored = emulator.connect_portal(SYSTEM)
    managed = next(iter(emulator.state.devices.values()))
    entra_user = next(iter(emulator.state.users.values()))
    user = DirectoryUser.objects.create(
        object_id=uuid.UUID(entra_user["id"]), upn=entra_user["userPrincipalName"], display_name="Alice"
    )
    Device.objects.create(
        device_id=uuid.UUID(managed["azureADDeviceId"]),
        name="PC-ALICE",
        platform=Platform.WINDOWS,
        os_version="10.0.22631.1",
        primary_user=user,
    )
    key = EncryptionKey.objects.create(
        provider_name="Microsoft Software Key Storage Provider",
        key_name="PFXEncryptionKey",
        size=2048,
        fingerprint=uuid.uuid4().hex,
        public_key_pem="-",
    )
    now = timezone.now()
    certificate = Certificate.objects.create(
        user=user,
        upn=user.upn,
        thumbprint="a1" * 20,
        purpose="smimeEncryption",
        subject=f"CN={user.upn}",
        issuer="CN=Contoso Issuing CA",
        serial="1A2B",
        not_before=now,
        not_after=now + dt.timedelta(days=365),
        key_type="RSA",
        encryption_key=key,
        padding="oaepSha256",
        pfx_blob=b"-",
        encrypted_password=b"-",
    )
    profile = services.profile_create(
        actor=SYSTEM,
        draft=ProfileDraft(
            platform=Platform.WINDOWS,
            name="Encryption for Windows",
            intended_purpose="smimeEncryption",
            key_storage_provider="useSoftwareKsp",
            scope_tags=(ScopeTag.default(),),
            all_users=True,
        ),
    )
    record = ProfileRecord.objects.get(profile=profile)
    # The worker sends the new profile too: whichever claims it first creates Intune's copy.
    profile_sync.push(record.pk, client=connection.client_for(stored))
    wait_for(
        lambda: (
            ProfileRecord.objects.filter(pk=record.pk, state=ProfileRecord.State.SYNCED)
            .exclude(graph_id="")
            .exists()
        ),
        timeout=30,
    )
    record.refresh_from_db()
    config_id = record.graph_id
    with emulator.state.lock:
        emulator.state.device_statuses[config_id] = [
            {
                "id": f"{managed['id']}_{config_id}_{user.object_id}",
                "deviceDisplayName": "PC-ALICE",
                "userPrincipalName": user.upn,
                "status": "error",
                "lastReportedDateTime": "2026-11-30T08:00:00Z",
            }
        ]
        emulator.state.certificate_states[config_id] = [
            {
                "id": f"{managed['id']}_{config_id}_{certificate.thumbprint}",
                "deviceDisplayName": "PC-ALICE",
                "certificateThumbprint": certificate.thumbprint.upper(),
                "certificateSerialNumber": "1A2B",
                "certificateIssuer": "CN=Contoso Issuing CA",
                "certificateExpirationDateTime": "2027-11-30T00:00:00Z",
                "certificateIssuanceState": "installFailed",
                "certificateRevokeStatus": "none",
                "certificateErrorCode": 2148073483,
            }
        ]
    return str(profile.code), user, certificate


def test_after_a_status_sync_the_device_status_and_the_user_page_show_intunes_state(
    page: Page,
    make_admin: Callable[..., User],
    sign_in_as: Callable[[User], None],
    emulator: Emulator,
    celery_worker: subprocess.Popen[bytes],
) -> None:
    profile_code, user, certificate = _scene(emulator)
    admin = make_admin("intune_administrator")
    TOTP.activate(admin, generate_totp_secret())
    sign_in_as(admin)

    page.goto("/tenant-admin/intune/intune-status/")
    expect(page.get_by_test_id("last-sync")).to_contain_text("never")
    page.get_by_role("button", name="Sync now").click()
    wait_for(lambda: StatusSyncRun.objects.exclude(state="running").exists(), timeout=60)
    run = StatusSyncRun.objects.get()
    assert run.state == "done", run.error
    page.goto("/tenant-admin/intune/intune-status/")
    expect(page.get_by_test_id("last-sync")).not_to_contain_text("never")

    page.goto(f"/profiles/{profile_code}/status/")
    expect(page.get_by_test_id("intune-summary")).to_contain_text("Intune reports 0 succeeded, 1 error")
    row = page.get_by_role("row").filter(has_text="PC-ALICE")
    expect(row.get_by_test_id("source-intune")).to_have_text("source: Intune")
    expect(row).to_contain_text("Error")

    page.goto(f"/users/{user.object_id}/")
    deliveries = page.get_by_test_id("user-deliveries")
    expect(deliveries.get_by_test_id("intune-last-sync")).to_be_visible()
    cert_row = deliveries.get_by_role("row").filter(has_text=certificate.thumbprint[:16])
    expect(cert_row.get_by_test_id("source-intune")).to_have_text("source: Intune")
    expect(cert_row).to_contain_text("intune_installFailed")
    assert emulator.state.stats.bad_requests == 0

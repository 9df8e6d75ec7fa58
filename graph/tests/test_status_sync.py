"""What Intune reports about a profile's devices and certificates, read into the delivery status model."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from certs.models import Certificate
from delivery.models import DeliveryState, Source
from devtools.emulator.server import Emulator
from directory.models import Device, DirectoryUser, Platform
from graph import profile_sync, status_sync
from graph.client import GraphClient
from graph.models import IntuneProfileStatus, ProfileRecord, StatusSyncRun, TenantConnection
from graph.tests.conftest import emulator_session
from portal.audit import Actor
from portal.lib.runs import Run
from portal.models import AuditEvent, ScopeTag, User
from profiles import services
from profiles.models import DeliveryStatus, Profile
from profiles.services import ProfileDraft

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def _profile_in_intune(client: GraphClient, name: str = "S/MIME Windows") -> tuple[Profile, str]:
    profile = services.profile_create(
        actor=SYSTEM,
        draft=ProfileDraft(
            platform=Platform.WINDOWS,
            name=name,
            intended_purpose="smimeEncryption",
            key_storage_provider="useTpmKspOtherwiseUseSoftwareKsp",
            scope_tags=(ScopeTag.default(),),
            all_users=True,
        ),
    )
    record = ProfileRecord.objects.get(profile=profile)
    profile_sync.push(record.pk, client=client)
    record.refresh_from_db()
    return profile, record.graph_id


def _devices(emulator: Emulator, user: DirectoryUser, count: int) -> list[tuple[Device, str]]:
    """Directory devices for the first ``count`` managed devices of the emulator, with their Intune ids."""
    out = []
    for item in list(emulator.state.devices.values())[:count]:
        device, _ = Device.objects.get_or_create(
            device_id=uuid.UUID(item["azureADDeviceId"]),
            defaults={"name": item["deviceName"], "platform": Platform.WINDOWS, "primary_user": user},
        )
        out.append((device, item["id"]))
    return out


def _report(emulator: Emulator, body: dict[str, Any]) -> None:
    session = emulator_session(emulator.ca_path)
    response = session.post(f"{emulator.url}/_emulator/profile-reports", json=body, timeout=10)
    assert response.status_code == 204, response.text


def _status(managed_id: str, config_id: str, user_id: str, status: str) -> dict[str, Any]:
    return {
        "id": f"{managed_id}_{config_id}_{user_id}",
        "deviceDisplayName": "PC",
        "userName": "Alice",
        "userPrincipalName": "alice@contoso.com",
        "platform": 0,
        "status": status,
        "lastReportedDateTime": "2026-11-30T08:00:00Z",
    }


def _cert_state(managed_id: str, config_id: str, thumbprint: str, issuance: str) -> dict[str, Any]:
    return {
        "id": f"{managed_id}_{config_id}_{thumbprint}",
        "deviceDisplayName": "PC",
        "certificateThumbprint": thumbprint.upper(),
        "certificateSerialNumber": "1A2B",
        "certificateIssuer": "CN=Contoso Issuing CA",
        "certificateExpirationDateTime": "2027-11-30T00:00:00Z",
        "certificateIssuanceState": issuance,
        "certificateRevokeStatus": "none",
        "certificateErrorCode": 0 if issuance == "installed" else 2148073483,
    }


@pytest.fixture
def scene(
    emulator: Emulator,
    connected: TenantConnection,
    portal_graph: GraphClient,
    make_certificate: Callable[..., Certificate],
    settings: Any,
) -> dict[str, Any]:
    # Runs follow each other at once here; each waits out the window of the one before.
    settings.GRAPH_STATUS_READ_WINDOW_SECONDS = 0.1
    certificate = make_certificate()
    user = certificate.user
    assert user is not None
    profile, config_id = _profile_in_intune(portal_graph)
    (ok, ok_managed), (bad, bad_managed) = _devices(emulator, user, 2)
    stranger = str(uuid.uuid4())
    _report(
        emulator,
        {
            "configurationId": config_id,
            "deviceStatuses": [
                _status(ok_managed, config_id, str(user.object_id), "compliant"),
                _status(bad_managed, config_id, str(user.object_id), "error"),
                _status(stranger, config_id, str(user.object_id), "compliant"),
            ],
            "userStatuses": [
                {
                    "id": f"{user.object_id}_{config_id}",
                    "userDisplayName": "Alice",
                    "userPrincipalName": user.upn,
                    "devicesCount": 2,
                    "status": "error",
                    "lastReportedDateTime": "2026-11-30T08:00:00Z",
                }
            ],
            "certificateStates": [
                _cert_state(ok_managed, config_id, certificate.thumbprint, "installed"),
                _cert_state(bad_managed, config_id, certificate.thumbprint, "installFailed"),
                _cert_state(ok_managed, config_id, "ab" * 20, "installed"),
            ],
        },
    )
    return {"profile": profile, "ok": ok, "bad": bad, "certificate": certificate, "client": portal_graph}


def test_intune_device_and_certificate_states_become_rows_with_source_intune(
    scene: dict[str, Any], emulator: Emulator
) -> None:
    run = status_sync.run(client=scene["client"])
    assert run.state == Run.State.DONE, run.error
    rows = {
        (r.device_id, r.certificate_thumbprint): r
        for r in DeliveryState.objects.filter(profile=scene["profile"], source=Source.INTUNE)
    }
    thumbprint = scene["certificate"].thumbprint
    assert rows[(scene["ok"].pk, "")].status == DeliveryStatus.SUCCEEDED
    assert rows[(scene["bad"].pk, "")].status == DeliveryStatus.ERROR
    installed = rows[(scene["ok"].pk, thumbprint)]
    assert installed.status == DeliveryStatus.SUCCEEDED
    assert installed.certificate == scene["certificate"]
    assert "serial 1A2B" in installed.source_detail and "Contoso Issuing CA" in installed.source_detail
    failed = rows[(scene["bad"].pk, thumbprint)]
    assert failed.status == DeliveryStatus.ERROR and failed.error_code == "intune_installFailed"
    assert len(rows) == 4  # the unknown device and the unknown certificate are not invented
    assert run.count("unknown devices") == 1 and run.count("unknown certificates") == 1
    summary = IntuneProfileStatus.objects.get(profile=scene["profile"])
    assert summary.users == {"error": 1}
    assert summary.overview["successCount"] == 2 and summary.overview["errorCount"] == 1
    assert summary.unknown_devices == 1 and summary.unknown_certificates == 1


def test_a_second_sync_changes_nothing_and_a_changed_report_changes_only_that_row(
    scene: dict[str, Any], emulator: Emulator
) -> None:
    status_sync.run(client=scene["client"])
    before = {r.pk: (r.status, r.changed_at, r.updated_at) for r in DeliveryState.objects.all()}
    again = status_sync.run(client=scene["client"])
    assert {r.pk: (r.status, r.changed_at, r.updated_at) for r in DeliveryState.objects.all()} == before
    assert again.count("rows created") == again.count("rows updated") == again.count("rows removed") == 0
    config_id = ProfileRecord.objects.get(profile=scene["profile"]).graph_id
    bad_managed = next(
        d["id"]
        for d in emulator.state.devices.values()
        if d["azureADDeviceId"] == str(scene["bad"].device_id)
    )
    _report(
        emulator,
        {
            "configurationId": config_id,
            "certificateStates": [],
            "deviceStatuses": [_status(bad_managed, config_id, str(uuid.uuid4()), "compliant")],
        },
    )
    third = status_sync.run(client=scene["client"])
    assert third.count("rows updated") == 1 and third.count("rows removed") == 3
    left = DeliveryState.objects.get(source=Source.INTUNE)
    assert (left.device_id, left.status) == (scene["bad"].pk, DeliveryStatus.SUCCEEDED)


def test_the_portals_own_rows_are_kept_beside_intunes(scene: dict[str, Any]) -> None:
    certificate, device = scene["certificate"], scene["bad"]
    own = DeliveryState.objects.create(
        profile=scene["profile"],
        device=device,
        user=certificate.user,
        certificate=certificate,
        certificate_thumbprint=certificate.thumbprint,
        status=DeliveryStatus.SUCCEEDED,
    )
    status_sync.run(client=scene["client"])
    own.refresh_from_db()
    assert own.status == DeliveryStatus.SUCCEEDED and own.source == Source.PORTAL
    assert (
        DeliveryState.objects.filter(device=device, certificate_thumbprint=certificate.thumbprint).count()
        == 2
    )


def test_throttled_reads_are_retried_and_every_page_is_read(
    scene: dict[str, Any], emulator: Emulator
) -> None:
    known = {str(scene["ok"].device_id), str(scene["bad"].device_id)}
    emulator.state.devices = {
        k: d for k, d in emulator.state.devices.items() if d["azureADDeviceId"] in known
    }
    emulator.config.page_size = 1
    emulator.config.read_limit, emulator.config.read_window = 3, 1.0
    run = status_sync.run(client=scene["client"], pacer=status_sync.Pacer(1000, 1.0))
    assert run.state == Run.State.DONE, run.error
    assert emulator.state.stats.read_throttled > 0
    assert DeliveryState.objects.filter(source=Source.INTUNE).count() == 4


def test_the_pacer_keeps_requests_inside_the_window() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    pacer = status_sync.Pacer(3, 20.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(7):
        pacer.wait()
        now[0] += 1.0
    assert waits == [17.0, 17.0] and pacer.total == 7


def test_a_run_right_after_another_waits_out_its_window_first(scene: dict[str, Any]) -> None:
    status_sync.run(client=scene["client"])
    waits: list[float] = []
    status_sync.run(client=scene["client"], pacer=status_sync.Pacer(800, 20.0, sleep=waits.append))
    assert len(waits) == 1 and 15 < waits[0] <= 20


def test_a_run_left_by_a_dead_worker_is_closed_and_the_next_one_runs(
    scene: dict[str, Any], settings: Any
) -> None:
    stale = StatusSyncRun.objects.create(started_at=timezone.now() - dt.timedelta(hours=1))
    settings.GRAPH_STATUS_SYNC_TIMEOUT_SECONDS = 1800
    run = status_sync.run(client=scene["client"])
    stale.refresh_from_db()
    assert stale.state == Run.State.FAILED and run.state == Run.State.DONE and run.pk != stale.pk


def test_while_a_sync_runs_no_second_one_starts(scene: dict[str, Any]) -> None:
    live = StatusSyncRun.objects.create()
    assert status_sync.run(client=scene["client"]).pk == live.pk
    assert not DeliveryState.objects.filter(source=Source.INTUNE).exists()


def test_sync_now_is_audited_and_the_page_shows_the_last_sync(
    scene: dict[str, Any], client: Client, settings: Any
) -> None:
    settings.PORTAL_ENFORCE_MFA = False
    admin = User.objects.create_user("admin@contoso.com", password="pw", is_superuser=True)
    client.force_login(admin)
    response = client.post(reverse("graph:status_sync_start"))
    assert response.status_code == 302
    assert AuditEvent.objects.filter(activity="Start Intune status sync").count() == 1
    run = StatusSyncRun.objects.get()
    status_sync.run(run.pk, client=scene["client"])
    page = client.get(reverse("graph:status_sync")).content.decode()
    assert "Last sync: " + timezone.localtime(status_sync.last_sync()).strftime("%Y-%m-%d %H:%M:%S") in page
    assert "1 unknown devices" in page


def test_a_reader_without_profile_rights_cannot_start_a_sync(
    connected: TenantConnection, client: Client
) -> None:
    reader = User.objects.create_user("reader@contoso.com", password="pw")
    client.force_login(reader)
    assert client.post(reverse("graph:status_sync_start")).status_code == 403
    assert not StatusSyncRun.objects.exists()

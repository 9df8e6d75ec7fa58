"""Bad input to the device API: each gets a clear code, is logged, and changes nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from connectors import reencrypt
from connectors.models import ConnectorEvent, ConnectorJob
from delivery import credentials
from delivery.models import DeliveryState, DeviceCredential
from delivery.tests.conftest import DeviceClient, Tenant, key
from directory.models import Device, Platform
from portal.audit import Actor
from portal.models import AuditEvent
from profiles.models import DeliveryStatus

pytestmark = pytest.mark.django_db


def _delivered(tenant: Tenant, pc: DeviceClient) -> str:
    tenant.profile()
    certificate = tenant.certificate()
    pc.check_in()
    tenant.connector_does_jobs()
    pc.check_in()
    return certificate.thumbprint


def test_an_unknown_credential_is_refused(tenant: Tenant, client: Client) -> None:
    device = DeviceClient(client, tenant.device, key(1))
    status, answer = device.post("check-in", {}, credential="pfxd_not-a-credential")
    assert (status, answer["error"]["code"]) == (401, "invalid_credential")


def test_a_revoked_device_credential_is_refused(tenant: Tenant, pc: DeviceClient) -> None:
    credentials.credential_revoke(Actor.system(), pc.row)
    status, answer = pc.post("check-in", {})
    assert (status, answer["error"]["code"]) == (401, "credential_revoked")
    assert AuditEvent.objects.filter(activity="Revoke device credential").exists()


def test_enrolling_again_revokes_the_earlier_credential(
    tenant: Tenant, pc: DeviceClient, client: Client
) -> None:
    old = pc.credential
    again = DeviceClient(client, tenant.device, key(2))
    assert again.enroll()[0] == 201
    assert pc.post("check-in", {}, credential=old)[1]["error"]["code"] == "credential_revoked"
    assert DeviceCredential.objects.filter(device=tenant.device, revoked_at=None).count() == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"secret": "pfxs_wrong-secret-value"}, 401, "invalid_secret"),
        ({"device_id": "00000000-0000-0000-0000-000000000000"}, 404, "unknown_device"),
        ({"platform": Platform.IOS}, 400, "platform_mismatch"),
        ({"public_key_pem": "not a key"}, 400, "bad_public_key"),
        ({"proof": "AAAA"}, 400, "no_proof_of_possession"),
        ({"secret": "", "token": "pfxt_unknown"}, 401, "invalid_token"),
    ],
)
def test_enrolment_refusals_name_what_is_wrong(
    tenant: Tenant, client: Client, body: dict[str, str], status: int, code: str
) -> None:
    device = DeviceClient(client, tenant.device, key(1))
    got, answer = device.enroll(**body)
    assert (got, answer["error"]["code"]) == (status, code)
    assert not DeviceCredential.objects.exists()


def test_an_admin_token_enrols_its_device_once(tenant: Tenant, client: Client) -> None:
    _row, token = credentials.token_issue(Actor.system(), tenant.device)
    device = DeviceClient(client, tenant.device, key(1))
    assert device.enroll(secret="", token=token, device_id="")[0] == 201
    assert device.enroll(secret="", token=token, device_id="")[1]["error"]["code"] == "token_used"


def test_a_replayed_or_out_of_order_report_changes_nothing(tenant: Tenant, pc: DeviceClient) -> None:
    thumbprint = _delivered(tenant, pc)
    assert (
        pc.report({"thumbprint": thumbprint, "result": "failed", "code": "keystore_locked"}, sequence=10)[0]
        == 200
    )
    status, answer = pc.report({"thumbprint": thumbprint, "result": "installed"}, sequence=9)
    assert (status, answer["error"]["code"]) == (409, "replayed_report")
    status, _answer = pc.report({"thumbprint": thumbprint, "result": "installed"}, sequence=10)
    assert status == 409
    assert DeliveryState.objects.get(certificate_thumbprint=thumbprint).status == DeliveryStatus.ERROR
    assert AuditEvent.objects.filter(activity="Device request refused (replayed_report)").count() == 2


def test_a_report_for_a_certificate_never_sent_is_refused_per_result(
    tenant: Tenant, pc: DeviceClient
) -> None:
    tenant.profile()
    pending = tenant.certificate()
    pc.check_in()  # queued, not yet re-encrypted: not sent
    stranger = "ab" * 20
    status, answer = pc.report(
        {"thumbprint": pending.thumbprint, "result": "installed"},
        {"thumbprint": stranger, "result": "installed"},
    )
    assert status == 200
    assert answer["results"] == {pending.thumbprint: "not_sent", stranger: "not_sent"}
    assert (
        DeliveryState.objects.get(certificate_thumbprint=pending.thumbprint).status == DeliveryStatus.PENDING
    )
    assert AuditEvent.objects.filter(activity="Device report results refused", result="failure").exists()


def test_removal_the_device_was_not_asked_for_is_refused(tenant: Tenant, pc: DeviceClient) -> None:
    thumbprint = _delivered(tenant, pc)
    assert pc.report({"thumbprint": thumbprint, "result": "removed"})[1]["results"] == {
        thumbprint: "not_asked_to_remove"
    }


@pytest.mark.parametrize(
    "body",
    [
        {"sequence": "1", "results": [{"thumbprint": "ab" * 20, "result": "installed"}]},
        {"sequence": 1, "results": []},
        {"sequence": 1, "results": [{"thumbprint": "xyz", "result": "installed"}]},
        {"sequence": True, "results": [{"thumbprint": "ab" * 20, "result": "installed"}]},
    ],
)
def test_a_malformed_report_is_a_bad_request(
    tenant: Tenant, pc: DeviceClient, body: dict[str, object]
) -> None:
    status, answer = pc.post("report", body)
    assert (status, answer["error"]["code"]) == (400, "bad_request")


def test_a_device_whose_platform_no_profile_targets_gets_an_empty_policy_with_the_reason(
    tenant: Tenant, client: Client
) -> None:
    tenant.profile()  # Windows only
    tenant.certificate()
    mac = Device.objects.create(name="MAC-ALICE", primary_user=tenant.user, platform=Platform.MACOS)
    device = DeviceClient(client, mac, key(2))
    assert device.enroll()[0] == 201
    policy = device.check_in()
    assert policy == {"install": [], "remove": [], "waiting": 0, "reason": "no_profile_targets_platform"}
    assert not DeliveryState.objects.filter(device=mac).exists()
    assert not ConnectorJob.objects.exists()


def test_a_connector_that_lost_the_key_fails_the_job_with_key_not_held(
    tenant: Tenant, pc: DeviceClient, django_capture_on_commit_callbacks: Any
) -> None:
    tenant.profile()
    certificate = tenant.certificate()
    pc.check_in()
    [job] = reencrypt.jobs_claim(tenant.connector)
    with django_capture_on_commit_callbacks(execute=True):
        answer = reencrypt.jobs_complete(
            tenant.connector,
            [
                reencrypt.DeviceResult(
                    job=job["id"], ok=False, code="key_not_held", error="KeyStoreError: gone"
                )
            ],
        )
    assert answer == {job["id"]: "failed"}
    event = ConnectorEvent.objects.get(event_id=ConnectorEvent.REENCRYPT_FAILURE)
    assert "key_not_held" in event.message and event.level == "error"
    row = DeliveryState.objects.get(certificate=certificate)
    assert (row.status, row.error_code) == (DeliveryStatus.ERROR, "key_not_held")
    assert AuditEvent.objects.filter(activity__startswith="Delivery failed", result="failure").exists()
    assert pc.check_in()["install"] == []


def test_a_ciphertext_of_the_wrong_size_is_not_kept(tenant: Tenant, pc: DeviceClient) -> None:
    tenant.profile()
    tenant.certificate()
    pc.check_in()
    [job] = reencrypt.jobs_claim(tenant.connector)
    answer = reencrypt.jobs_complete(
        tenant.connector, [reencrypt.DeviceResult(job=job["id"], ok=True, encrypted_password="c2hvcnQ=")]
    )
    assert answer == {job["id"]: "retry"}
    assert ConnectorJob.objects.get(kind="device").state == ConnectorJob.State.QUEUED

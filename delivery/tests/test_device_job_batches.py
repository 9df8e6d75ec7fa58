"""A connector claims device jobs in batches and reports a batch's results in one request."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from connectors import reencrypt
from connectors.agent import keystore
from connectors.models import Connector, ConnectorEvent, ConnectorJob
from delivery.models import DeliveryState
from delivery.tests.conftest import DeviceClient, Tenant
from portal.models import AuditEvent
from profiles.models import DeliveryStatus

pytestmark = pytest.mark.django_db


def _ciphertext(tenant: Tenant, job: dict[str, Any]) -> str:
    assert tenant.connector_key is not None
    plain = keystore.decrypt(
        tenant.connector_key, base64.b64decode(job["encrypted_password"]), job["from"]["padding"]
    )
    target = keystore.load_public(job["to"]["public_key_pem"])
    return base64.b64encode(keystore.encrypt(target, plain, job["to"]["padding"])).decode()


def _three_waiting(tenant: Tenant, pc: DeviceClient) -> None:
    tenant.profile()
    for _ in range(3):
        tenant.certificate()
    assert pc.check_in()["waiting"] == 3


def _snapshot() -> tuple[Any, ...]:
    return (
        sorted(ConnectorJob.objects.values_list("code", "state", "attempts", "claimed_by_id")),
        ConnectorEvent.objects.count(),
        AuditEvent.objects.count(),
        sorted(DeliveryState.objects.values_list("pk", "status", "updated_at")),
    )


def test_a_batch_of_results_keeps_the_successes_and_queues_the_failures_again(
    tenant: Tenant, pc: DeviceClient
) -> None:
    _three_waiting(tenant, pc)
    jobs = reencrypt.jobs_claim(tenant.connector, limit=50)
    assert len(jobs) == 3
    good, failed, short = jobs
    answer = reencrypt.jobs_complete(
        tenant.connector,
        [
            reencrypt.DeviceResult(job=good["id"], ok=True, encrypted_password=_ciphertext(tenant, good)),
            reencrypt.DeviceResult(job=failed["id"], ok=False, code="decrypt_failed", error="bad padding"),
            reencrypt.DeviceResult(job=short["id"], ok=True, encrypted_password="c2hvcnQ="),
        ],
    )
    assert answer == {good["id"]: "done", failed["id"]: "retry", short["id"]: "retry"}
    states = {str(code): state for code, state in ConnectorJob.objects.values_list("code", "state")}
    assert [states[j["id"]] for j in jobs] == ["done", "queued", "queued"]
    events = list(ConnectorEvent.objects.values_list("event_id", flat=True))
    assert sorted(events) == [ConnectorEvent.REENCRYPT_SUCCESS] + [ConnectorEvent.REENCRYPT_RETRY] * 2
    policy = pc.check_in()
    assert (len(policy["install"]), policy["waiting"]) == (1, 2)
    # The two queued again are handed out again, and only they.
    assert {j["id"] for j in reencrypt.jobs_claim(tenant.connector, limit=50)} == {failed["id"], short["id"]}


def test_a_report_sent_again_changes_nothing(tenant: Tenant, pc: DeviceClient) -> None:
    _three_waiting(tenant, pc)
    jobs = reencrypt.jobs_claim(tenant.connector, limit=50)
    results = [
        reencrypt.DeviceResult(job=j["id"], ok=True, encrypted_password=_ciphertext(tenant, j)) for j in jobs
    ]
    assert set(reencrypt.jobs_complete(tenant.connector, results).values()) == {"done"}
    before = _snapshot()
    assert reencrypt.jobs_complete(tenant.connector, results) == {j["id"]: "not_claimed" for j in jobs}
    assert _snapshot() == before
    assert len(pc.check_in()["install"]) == 3


def test_a_claim_takes_at_most_its_limit_and_never_a_job_another_connector_holds(
    tenant: Tenant, pc: DeviceClient
) -> None:
    _three_waiting(tenant, pc)
    other = Connector.objects.create(
        name="Connector B",
        features=list(tenant.connector.features),
        credential_hash="y" * 64,
        last_self_tests=[{"name": "key", "ok": True}],
    )
    other.keys.create(
        provider_name="P", key_name="K", fingerprint=tenant.encryption_key.fingerprint, size=2048
    )
    first = reencrypt.jobs_claim(tenant.connector, limit=2)
    second = reencrypt.jobs_claim(other, limit=50)
    assert (len(first), len(second)) == (2, 1)
    assert not {j["id"] for j in first} & {j["id"] for j in second}
    assert reencrypt.jobs_claim(tenant.connector, limit=50) == []
    # A result from the connector that does not hold the claim is not kept.
    stolen = reencrypt.DeviceResult(
        job=second[0]["id"], ok=True, encrypted_password=_ciphertext(tenant, second[0])
    )
    assert reencrypt.jobs_complete(tenant.connector, [stolen]) == {second[0]["id"]: "not_claimed"}
    assert ConnectorJob.objects.get(code=second[0]["id"]).state == ConnectorJob.State.CLAIMED
    assert DeliveryState.objects.filter(status=DeliveryStatus.PENDING).count() == 3

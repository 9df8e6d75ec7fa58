"""The connector API through the test client: credentials, refusals, limits and job routing."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client
from django.utils import timezone

from connectors import enrolment
from connectors import rotation as key_rotation
from connectors.agent import possession
from connectors.models import Connector, ConnectorJob, EnrollmentToken
from portal.audit import Actor
from portal.lib.refusal import Refused

pytestmark = pytest.mark.django_db


def _post(client: Client, path: str, body: object, credential: str = "") -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    response = client.post(
        f"/connector-api/{path}", json.dumps(body), content_type="application/json", headers=headers
    )
    return response.status_code, response.json()


def _pem(key: rsa.RSAPrivateKey | None = None) -> str:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _publish(
    client: Client, connector: Connector, credential: str, key: rsa.RSAPrivateKey | None = None, **body: str
) -> tuple[int, dict[str, Any]]:
    """Publish ``key`` as the agent does, with its proof of possession."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    request = {"provider_name": "P", "key_name": "K", "public_key_pem": _pem(key)}
    request["proof"] = possession.prove(
        key, str(connector.code), request["provider_name"], request["key_name"]
    )
    return _post(client, "keys", request | body, credential)


@pytest.fixture
def enrolled(token_for) -> tuple[Connector, str]:
    connector, credential = enrolment.connector_enroll(
        token=token_for("A"), host_name="srv1", version="1.2.0", features=["rewrap", "bogus"]
    )
    return connector, credential


def test_enrollment_returns_a_credential_once_and_keeps_only_its_hash(client, token_for):
    token = token_for("A")
    status, answer = _post(client, "enroll", {"token": token, "host_name": "srv1", "version": "1.2.0"})
    assert status == 201 and answer["credential"].startswith("pfxc_")
    connector = Connector.objects.get()
    assert answer["credential"] not in str(Connector.objects.values().get())
    assert EnrollmentToken.objects.get().used_at is not None
    status, answer = _post(client, "enroll", {"token": token})
    assert (status, answer["error"]["code"]) == (401, "token_used")
    assert connector.name == "A"


def test_an_expired_or_unknown_token_is_refused(client, token_for):
    token = token_for("A")
    EnrollmentToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _post(client, "enroll", {"token": token})[1]["error"]["code"] == "token_expired"
    assert _post(client, "enroll", {"token": "pfxe_nope"})[1]["error"]["code"] == "invalid_token"


def test_enrollment_is_rate_limited_per_address(client, settings):
    settings.CONNECTOR_ENROLL_RATE_PER_MINUTE = 2
    codes = [_post(client, "enroll", {"token": "pfxe_guess"})[0] for _ in range(4)]
    assert codes[:2] == [401, 401] and codes[-1] == 429


def test_connector_endpoints_need_the_connectors_own_credential(client, enrolled):
    _, credential = enrolled
    assert _post(client, "heartbeat", {})[0] == 401
    assert _post(client, "heartbeat", {}, "pfxc_wrong")[1]["error"]["code"] == "invalid_credential"
    assert _post(client, "heartbeat", {"version": "1.2.0"}, credential)[0] == 200
    assert client.get("/connector-api/heartbeat").status_code == 405


def test_a_disabled_connector_gets_403_and_a_revoked_one_401_at_once(client, enrolled, intune_admin):
    connector, credential = enrolled
    enrolment.connector_disable(Actor.for_user(intune_admin), connector)
    assert _post(client, "heartbeat", {}, credential)[1]["error"]["code"] == "connector_disabled"
    enrolment.connector_enable(Actor.for_user(intune_admin), connector)
    assert _post(client, "heartbeat", {}, credential)[0] == 200
    enrolment.connector_revoke(Actor.for_user(intune_admin), connector)
    assert _post(client, "heartbeat", {}, credential)[0] == 401


def test_bad_bodies_get_clear_error_codes(client, enrolled):
    _, credential = enrolled
    response = client.post(
        "/connector-api/heartbeat",
        "not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {credential}",
    )
    assert response.json()["error"]["code"] == "bad_json"
    assert _post(client, "heartbeat", {"self_tests": "x"}, credential)[1]["error"]["code"] == "bad_request"
    assert _post(client, "heartbeat", {"pad": "x" * 300_000}, credential)[1]["error"]["code"] == "too_large"
    assert (
        _post(client, "keys", {"provider_name": "P", "key_name": "K", "public_key_pem": "junk"}, credential)[
            1
        ]["error"]["code"]
        == "bad_public_key"
    )


def test_a_published_private_key_is_refused(client, enrolled):
    _, credential = enrolled
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    status, answer = _post(
        client, "keys", {"provider_name": "P", "key_name": "K", "public_key_pem": pem}, credential
    )
    assert status == 400 and answer["error"]["code"] == "bad_public_key"


def test_a_second_key_under_a_taken_name_is_a_conflict(client, enrolled):
    connector, credential = enrolled
    assert _publish(client, connector, credential)[0] == 200
    status, answer = _publish(client, connector, credential)
    assert (status, answer["error"]["code"]) == (409, "key_name_conflict")


def test_a_key_is_refused_unless_the_connector_proves_it_holds_the_private_key(client, enrolled, token_for):
    connector, credential = enrolled
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    someone_else = enrolment.connector_enroll(
        token=token_for("B"), host_name="b", version="1.2.0", features=[]
    )[0]
    refusals = [
        _publish(client, connector, credential, key, proof=""),
        _publish(client, connector, credential, key, proof="not base64!"),
        # Signed by another private key, or for another connector, or for another key name.
        _publish(
            client, connector, credential, key, proof=possession.prove(other, str(connector.code), "P", "K")
        ),
        _publish(
            client, connector, credential, key, proof=possession.prove(key, str(someone_else.code), "P", "K")
        ),
        _publish(
            client, connector, credential, key, proof=possession.prove(key, str(connector.code), "P", "K2")
        ),
    ]
    for status, answer in refusals:
        assert (status, answer["error"]["code"]) == (400, "no_proof_of_possession")
    from certs.models import EncryptionKey

    assert not EncryptionKey.objects.exists()
    assert _publish(client, connector, credential, key)[0] == 200


def test_a_job_is_claimed_by_exactly_one_connector_and_retried_by_another_after_a_timeout(
    client, token_for, make_certificates, settings
):
    shared = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pairs = [
        enrolment.connector_enroll(token=token_for(n), host_name=n, version="1.2.0", features=["rewrap"])
        for n in "ab"
    ]
    for connector, credential in pairs:
        _publish(client, connector, credential, shared)
        _post(client, "heartbeat", {"self_tests": [{"name": "round_trip", "ok": True}]}, credential)
    from certs.models import EncryptionKey

    key = EncryptionKey.objects.get()
    other = EncryptionKey.objects.create(
        provider_name="P",
        key_name="K2",
        size=2048,
        fingerprint="f" * 64,
        public_key_pem=_pem(),
        possession_proven_at=timezone.now(),
    )
    make_certificates(key, ["one"])
    key_rotation.rotation_start(Actor.system(), from_key=key, to_key=other)

    first = _post(client, "jobs/claim", {"limit": 5}, pairs[0][1])[1]["jobs"]
    second = _post(client, "jobs/claim", {"limit": 5}, pairs[1][1])[1]["jobs"]
    assert len(first) == 1 and second == []
    assert "pfx" not in json.dumps(first).lower()

    ConnectorJob.objects.update(claimed_at=timezone.now() - timedelta(hours=1))
    retried = _post(client, "jobs/claim", {"limit": 5}, pairs[1][1])[1]["jobs"]
    assert [j["id"] for j in retried] == [first[0]["id"]]
    late = _post(
        client,
        "jobs/results",
        {"results": [{"job": first[0]["id"], "ok": True, "encrypted_password": "AA=="}]},
        pairs[0][1],
    )
    assert late[1]["results"][first[0]["id"]] == "not_claimed"


def test_jobs_wait_while_no_connector_holds_the_key(client, enrolled, make_certificates):
    from certs.models import EncryptionKey

    _, credential = enrolled
    key = EncryptionKey.objects.create(
        provider_name="P", key_name="K", size=2048, fingerprint="a" * 64, public_key_pem=_pem()
    )
    other = EncryptionKey.objects.create(
        provider_name="P",
        key_name="K2",
        size=2048,
        fingerprint="b" * 64,
        public_key_pem=_pem(),
        possession_proven_at=timezone.now(),
    )
    make_certificates(key, ["one"])
    key_rotation.rotation_start(Actor.system(), from_key=key, to_key=other)
    _post(client, "heartbeat", {"self_tests": [{"name": "round_trip", "ok": True}]}, credential)
    assert _post(client, "jobs/claim", {}, credential)[1]["jobs"] == []
    assert ConnectorJob.objects.get().state == ConnectorJob.State.QUEUED


def _add_by_hand(intune_admin, key: rsa.RSAPrivateKey, key_name: str = "K2"):
    """An admin adds a public key under Encryption keys, as exported from another connector."""
    from certs.keys import key_add
    from portal.models import ScopeTag

    return key_add(
        Actor.for_user(intune_admin),
        data=_pem(key).encode(),
        provider_name="P",
        key_name=key_name,
        default_padding="oaepSha512",
        make_default=False,
        tags=[ScopeTag.default()],
    )


def _healthy_holder(client, token_for, name: str) -> tuple[Connector, str, rsa.RSAPrivateKey]:
    connector, credential = enrolment.connector_enroll(
        token=token_for(name), host_name=name, version="1.2.0", features=["rewrap"]
    )
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert _publish(client, connector, credential, private)[0] == 200
    _post(client, "heartbeat", {"self_tests": [{"name": "round_trip", "ok": True}]}, credential)
    return connector, credential, private


def test_a_rotation_to_a_key_added_by_hand_is_refused_until_a_connector_proves_it_holds_it(
    client, token_for, make_certificates, intune_admin
):
    from certs.models import EncryptionKey

    _healthy_holder(client, token_for, "a")
    old_key = EncryptionKey.objects.get(key_name="K")
    assert old_key.possession_proven
    make_certificates(old_key, ["one", "two"])
    attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    by_hand = _add_by_hand(intune_admin, attacker_key)
    assert not by_hand.possession_proven

    with pytest.raises(Refused) as refused:
        key_rotation.rotation_start(Actor.for_user(intune_admin), from_key=old_key, to_key=by_hand)
    assert refused.value.code == "key_not_proven" and "added by hand" in refused.value.message
    assert not ConnectorJob.objects.exists()

    # A connector that really holds the private key publishes it (with its proof): now it may be chosen.
    second, credential = enrolment.connector_enroll(
        token=token_for("b"), host_name="b", version="1.2.0", features=["rewrap"]
    )
    proof = possession.prove(attacker_key, str(second.code), "P", "K2")
    assert _publish(client, second, credential, attacker_key, key_name="K2", proof=proof)[0] == 200
    by_hand.refresh_from_db()
    assert by_hand.possession_proven
    rotation = key_rotation.rotation_start(Actor.for_user(intune_admin), from_key=old_key, to_key=by_hand)
    assert rotation.total == 2


def test_rewrap_jobs_towards_a_key_without_proof_are_never_handed_to_a_connector(
    client, token_for, make_certificates, intune_admin
):
    """Jobs that reach the queue some other way (a rotation queued before the check, a direct write)."""
    from certs.models import EncryptionKey
    from connectors.models import KeyRotation

    _, credential, _ = _healthy_holder(client, token_for, "a")
    old_key = EncryptionKey.objects.get(key_name="K")
    certificates = make_certificates(old_key, ["one", "two"])
    by_hand = _add_by_hand(intune_admin, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    rotation = KeyRotation.objects.create(
        from_fingerprint=old_key.fingerprint, to_fingerprint=by_hand.fingerprint, total=2
    )
    ConnectorJob.objects.bulk_create(
        ConnectorJob(
            rotation=rotation,
            certificate_id=c.pk,
            from_fingerprint=old_key.fingerprint,
            to_fingerprint=by_hand.fingerprint,
        )
        for c in certificates
    )

    status, answer = _post(client, "jobs/claim", {"limit": 5}, credential)
    assert status == 200 and answer["jobs"] == []
    assert by_hand.public_key_pem not in json.dumps(answer)
    assert set(ConnectorJob.objects.values_list("state", flat=True)) == {ConnectorJob.State.FAILED}
    assert all(e.startswith("key_not_proven") for e in ConnectorJob.objects.values_list("error", flat=True))
    rotation.refresh_from_db()
    assert rotation.state == KeyRotation.State.FAILED
    for certificate in certificates:
        certificate.refresh_from_db()
        assert certificate.encryption_key_id == old_key.pk


def test_a_result_for_a_key_without_proof_is_not_stored(client, token_for, make_certificates, intune_admin):
    from certs.models import EncryptionKey

    holder, credential, _ = _healthy_holder(client, token_for, "a")
    old_key = EncryptionKey.objects.get(key_name="K")
    [certificate] = make_certificates(old_key, ["one"])
    by_hand = _add_by_hand(intune_admin, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    job = ConnectorJob.objects.create(
        certificate_id=certificate.pk,
        from_fingerprint=old_key.fingerprint,
        to_fingerprint=by_hand.fingerprint,
        state=ConnectorJob.State.CLAIMED,
        claimed_by=holder,
        claimed_at=timezone.now(),
        attempts=1,
    )
    ciphertext = base64.b64encode(b"\x01" * 256).decode()
    result = {"job": str(job.code), "ok": True, "encrypted_password": ciphertext}
    assert _post(client, "jobs/results", {"results": [result]}, credential)[0] == 200
    certificate.refresh_from_db()
    assert certificate.encryption_key_id == old_key.pk


def test_the_backfill_marks_keys_connectors_already_published_as_proven(token_for, intune_admin):
    import importlib

    from django.apps import apps

    from certs.models import EncryptionKey
    from connectors.models import ConnectorKey

    migration = importlib.import_module("connectors.migrations.0002_backfill_key_possession_proofs")
    connector, _ = enrolment.connector_enroll(token=token_for("a"), host_name="a", version="1", features=[])
    published = EncryptionKey.objects.create(
        provider_name="P", key_name="A", size=2048, fingerprint="a" * 64, public_key_pem=_pem()
    )
    published_at = timezone.now() - timedelta(days=30)
    ConnectorKey.objects.create(
        connector=connector,
        provider_name="P",
        key_name="A",
        fingerprint=published.fingerprint,
        size=2048,
        published_at=published_at,
    )
    orphan = EncryptionKey.objects.create(
        provider_name="P",
        key_name="B",
        size=2048,
        fingerprint="b" * 64,
        public_key_pem=_pem(),
        source=EncryptionKey.Source.CONNECTOR,
    )
    by_hand = _add_by_hand(intune_admin, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    migration.backfill(apps, None)

    assert EncryptionKey.objects.get(pk=published.pk).possession_proven_at == published_at
    orphan.refresh_from_db()
    assert orphan.possession_proven_at == orphan.created_at
    assert EncryptionKey.objects.get(pk=by_hand.pk).possession_proven_at is None


@pytest.mark.parametrize("pending", ["abc", [1], {"n": 1}, True, "1e9"])
def test_a_heartbeat_whose_pending_work_is_not_a_whole_number_gets_bad_request(client, enrolled, pending):
    _, credential = enrolled
    status, body = _post(client, "heartbeat", {"pending_work": pending}, credential)
    assert status == 400 and body["error"]["code"] == "bad_request"
    assert "pending_work" in body["error"]["message"]

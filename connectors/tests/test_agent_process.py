"""The real agent program, run as a subprocess against the live server (through a recording proxy)."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core import mail
from django.db import connection

from certs.models import EncryptionKey
from conftest import wait_for
from connectors import enrolment, health
from connectors import rotation as key_rotation
from connectors.alerts import alerts_send
from connectors.models import Connector, ConnectorEvent, KeyRotation, Status, StatusChange
from connectors.tests.conftest import PASSPHRASE, RecordingProxy
from portal.audit import Actor
from portal.lib.tokens import hash_secret
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

PROVIDER = "Microsoft Software Key Storage Provider"


def _post(url: str, body: dict[str, Any], credential: str = "") -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if credential:
        headers["Authorization"] = f"Bearer {credential}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _private_key(state_dir: Path, key_name: str) -> rsa.RSAPrivateKey:
    data = (state_dir / "keys" / PROVIDER / f"{key_name}.p8").read_bytes()
    key = serialization.load_pem_private_key(data, password=PASSPHRASE.encode())
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _secret_forms(key: rsa.RSAPrivateKey) -> list[bytes]:
    """Ways the private key could be written down: numbers in hex and decimal, DER and PEM, plain or Base64."""
    numbers = key.private_numbers()
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forms = [format(numbers.d, "x").encode(), str(numbers.d).encode(), format(numbers.p, "x").encode()]
    forms += [der[-64:], base64.b64encode(der)[-64:], b"PRIVATE KEY"]
    forms.append(base64.b64encode(numbers.d.to_bytes(256, "big"))[:64])
    return forms


def _database_text() -> bytes:
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                dump.append(repr(row))
    return "\n".join(dump).encode()


def _key(name: str) -> EncryptionKey:
    return wait_for(lambda: EncryptionKey.objects.filter(key_name=name).first())  # type: ignore[return-value]


def _connector(name: str) -> Connector:
    return wait_for(lambda: Connector.objects.filter(name=name).first())  # type: ignore[return-value]


def test_an_agent_enrolls_with_a_one_time_token_publishes_its_key_and_checks_in_healthy(
    live_server, proxy, start_agent, token_for, tmp_path
):
    token = token_for("Connector A")
    agent = start_agent(proxy.url, "a", "--enroll", token, "--key-name", "KeyA")
    connector = _connector("a")

    key = _key("KeyA")
    assert key.source == EncryptionKey.Source.CONNECTOR and key.provider_name == PROVIDER
    assert _connector("a").keys.get().fingerprint == key.fingerprint
    wait_for(lambda: Connector.objects.get(pk=connector.pk).status() == Status.HEALTHY)
    connector.refresh_from_db()
    assert connector.host_name == "host-a" and connector.version and "rewrap" in connector.features
    assert {t["name"] for t in connector.last_self_tests} == {
        "key_loadable",
        "round_trip",
        "clock_skew",
        "pending_work",
    }
    assert connector.self_tests_ok and connector.heartbeats.exists()

    credential = json.loads((tmp_path / "a" / "credential.json").read_text())["credential"]
    assert connector.credential_hash == hash_secret(credential)
    assert credential.encode() not in _database_text() and token.encode() not in _database_text()

    status, answer = _post(f"{live_server}/connector-api/enroll", {"token": token, "host_name": "thief"})
    assert status == 401 and answer["error"]["code"] == "token_used"
    assert Connector.objects.count() == 1
    assert agent.poll() is None


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _waits_for_the_portal(agent: Any, log: Path) -> bool:
    """True once the agent says it is retrying; False if it exited instead."""
    wait_for(lambda: agent.poll() is not None or b"unreachable" in log.read_bytes())
    return agent.poll() is None


def test_an_agent_started_before_the_portal_keeps_trying_then_enrolls_and_publishes_its_key(
    live_server, start_agent, token_for, tmp_path
):
    port = _unused_port()
    log = tmp_path / "agent.log"
    agent = start_agent(
        f"http://127.0.0.1:{port}", "a", "--enroll", token_for("A"), "--key-name", "KeyA", log=log
    )
    assert _waits_for_the_portal(agent, log), log.read_text()

    portal = RecordingProxy(str(live_server), port=port)
    try:
        key = _key("KeyA")
        assert _connector("a").keys.get().fingerprint == key.fingerprint
        assert agent.poll() is None
    finally:
        portal.close()
    assert b"Traceback" not in log.read_bytes()


def test_an_enrolled_agent_restarted_while_the_portal_is_down_publishes_its_key_once_it_is_back(
    live_server, start_agent, token_for, tmp_path
):
    first = start_agent(str(live_server), "a", "--enroll", token_for("A"), "--once")
    assert first.wait(timeout=60) == 0
    connector = _connector("a")
    assert connector.keys.count() == 1
    port = _unused_port()
    log = tmp_path / "agent.log"
    agent = start_agent(f"http://127.0.0.1:{port}", "a", log=log)
    assert _waits_for_the_portal(agent, log), log.read_text()

    portal = RecordingProxy(str(live_server), port=port)
    try:
        published = wait_for(lambda: next((b for b in portal.bodies if b"public_key_pem" in b), None))
        assert json.loads(published)["key_name"] == "PFXEncryptionKey"  # type: ignore[arg-type]
        wait_for(lambda: Connector.objects.get(pk=connector.pk).heartbeats.count() >= 2)
        assert agent.poll() is None
    finally:
        portal.close()
    assert b"Traceback" not in log.read_bytes()


def test_key_rotation_rewraps_passwords_so_the_new_private_key_decrypts_them_and_no_private_key_leaves_the_agent(
    live_server, proxy, start_agent, token_for, make_certificates, intune_admin, tmp_path
):
    start_agent(proxy.url, "a", "--enroll", token_for("A"), "--key-name", "KeyA")
    old_key = _key("KeyA")
    passwords = ["Passw0rd-one", "second secret", "x" * 100]
    certificates = make_certificates(old_key, passwords)
    start_agent(proxy.url, "b", "--enroll", token_for("B"), "--key-name", "KeyB")
    new_key = _key("KeyB")

    rotation = key_rotation.rotation_start(Actor.for_user(intune_admin), from_key=old_key, to_key=new_key)
    assert rotation.total == 3
    wait_for(lambda: KeyRotation.objects.get(pk=rotation.pk).state == KeyRotation.State.DONE)

    new_private = _private_key(tmp_path / "b", "KeyB")
    for certificate, password in zip(certificates, passwords, strict=True):
        certificate.refresh_from_db()
        assert certificate.encryption_key_id == new_key.pk
        algorithm = hashes.SHA512()
        oaep = padding.OAEP(mgf=padding.MGF1(algorithm=algorithm), algorithm=algorithm, label=None)
        assert new_private.decrypt(bytes(certificate.encrypted_password), oaep) == password.encode()
    worker = Connector.objects.get(name="a")
    assert worker.events.filter(event_id=ConnectorEvent.REENCRYPT_SUCCESS).count() == 3
    assert AuditEvent.objects.filter(
        activity="Re-wrap certificate passwords", actor_type="connector"
    ).exists()
    assert AuditEvent.objects.filter(activity="Finish key rotation").exists()

    wire = b"\n".join(proxy.bodies)
    database = _database_text()
    assert b"public_key_pem" in wire  # the recording saw the traffic
    for name in ("a", "b"):
        for form in _secret_forms(_private_key(tmp_path / name, f"Key{name.upper()}")):
            assert form not in wire
            assert form not in database
    for password in passwords:
        assert password.encode() not in wire and password.encode() not in database


def test_a_killed_agent_goes_to_error_and_one_alert_is_sent(
    live_server, start_agent, token_for, intune_admin
):
    agent = start_agent(str(live_server), "a", "--enroll", token_for("A"))
    connector = _connector("a")
    wait_for(lambda: Connector.objects.get(pk=connector.pk).status() == Status.HEALTHY)
    health.health_sweep()
    agent.kill()
    agent.wait(timeout=10)

    wait_for(lambda: Connector.objects.get(pk=connector.pk).status() == Status.ERROR, timeout=30)
    health.health_sweep()
    alerts_send()
    health.health_sweep()
    alerts_send()

    change = StatusChange.objects.get(connector=connector, new_status=Status.ERROR)
    assert change.alerted_at is not None and "mailed" in change.alert_result
    alerts = [m for m in mail.outbox if "is error" in m.subject]
    assert len(alerts) == 1 and intune_admin.email in alerts[0].to


def test_a_revoked_agent_is_refused_at_its_next_request_and_stops(
    live_server, start_agent, token_for, intune_admin
):
    agent = start_agent(str(live_server), "a", "--enroll", token_for("A"))
    connector = _connector("a")
    wait_for(lambda: Connector.objects.get(pk=connector.pk).last_seen)
    enrolment.connector_revoke(Actor.for_user(intune_admin), connector)

    wait_for(lambda: agent.poll() is not None, timeout=30)
    assert agent.returncode == 3
    connector.refresh_from_db()
    assert connector.credential_hash is None and connector.status() == Status.REVOKED


def test_the_run_connector_command_has_the_same_shape_and_needs_no_database(tmp_path):
    from django.conf import settings

    env = {
        "PATH": "/usr/bin:/bin",
        "CONNECTOR_KEY_PASSPHRASE": PASSPHRASE,
        "DATABASE_URL": "postgres://nowhere.invalid/x",
    }
    result = subprocess.run(
        [settings.BASE_DIR / ".venv/bin/python", "manage.py", "run_connector", "--help"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for flag in (b"--server", b"--enroll", b"--state-dir", b"--export-key", b"--import-key"):
        assert flag in result.stdout

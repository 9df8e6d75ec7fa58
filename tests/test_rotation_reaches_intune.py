"""Key rotation end to end: real connector agents re-wrap the passwords, a real Celery worker re-sends
them, and every affected userPFXCertificate in the Graph emulator ends up wrapped to the new key."""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from certs.hooks import key_retirement_blockers
from certs.models import Certificate, EncryptionKey, GraphState
from certs.pfx import encrypt_password
from conftest import wait_for
from connectors import rotation as key_rotation
from connectors.models import KeyRotation
from connectors.tests.conftest import (  # noqa: F401 (fixtures)
    PASSPHRASE,
    _fast_connector_clock,
    start_agent,
    token_for,
)
from devtools.emulator.server import Emulator
from directory.models import DirectoryUser
from graph import records, uploads
from graph.models import UploadRecord
from graph.tests.factories import make_pfx
from portal.audit import Actor
from portal.models import User

pytestmark = pytest.mark.worker
PROVIDER = "Microsoft Software Key Storage Provider"
PASSWORDS = ["first secret", "second secret", "third secret"]


def _key(name: str) -> EncryptionKey:
    return wait_for(lambda: EncryptionKey.objects.filter(key_name=name).first())  # type: ignore[return-value]


def _certificates(emulator: Emulator, key: EncryptionKey) -> list[Certificate]:
    public = serialization.load_pem_public_key(key.public_key_pem.encode())
    people = list(emulator.state.users.values())[: len(PASSWORDS)]
    rows = []
    for person, password in zip(people, PASSWORDS, strict=True):
        user = DirectoryUser.objects.create(
            object_id=uuid.UUID(person["id"]), upn=person["userPrincipalName"], display_name="Emulated user"
        )
        pfx, thumbprint, cert = make_pfx(user.upn)
        rows.append(
            Certificate.objects.create(
                user=user,
                upn=user.upn,
                thumbprint=thumbprint,
                subject=user.upn,
                issuer=user.upn,
                serial=str(cert.serial_number),
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                key_type="ec",
                encryption_key=key,
                padding=key.default_padding,
                pfx_blob=pfx,
                encrypted_password=encrypt_password(password, public, key.default_padding),  # type: ignore[arg-type]
            )
        )
    return rows


def test_a_key_rotation_updates_every_affected_record_in_intune(
    request: pytest.FixtureRequest,
    live_server: Any,
    emulator: Emulator,
    celery_worker: subprocess.Popen[bytes],
    intune_admin: User,
    tmp_path: Any,
) -> None:
    start: Callable[..., subprocess.Popen[bytes]] = request.getfixturevalue("start_agent")
    token: Callable[[str], str] = request.getfixturevalue("token_for")
    start(str(live_server), "a", "--enroll", token("A"), "--key-name", "KeyA")
    old_key = _key("KeyA")
    emulator.connect_portal()
    certificates = _certificates(emulator, old_key)
    uploads.queue_uploads([c.pk for c in certificates])
    wait_for(
        lambda: Certificate.objects.filter(graph_state=GraphState.SYNCED).count() == len(certificates),
        timeout=60,
    )
    assert key_retirement_blockers(old_key)  # portal and Intune both still use it

    start(str(live_server), "b", "--enroll", token("B"), "--key-name", "KeyB")
    new_key = _key("KeyB")
    rotation = key_rotation.rotation_start(Actor.for_user(intune_admin), from_key=old_key, to_key=new_key)
    wait_for(lambda: KeyRotation.objects.get(pk=rotation.pk).state == KeyRotation.State.DONE, timeout=60)
    wait_for(
        lambda: UploadRecord.objects.filter(key_fingerprint=new_key.fingerprint).count() == len(certificates),
        timeout=60,
    )

    data = (tmp_path / "b" / "keys" / PROVIDER / "KeyB.p8").read_bytes()
    private = serialization.load_pem_private_key(data, password=PASSPHRASE.encode())
    assert isinstance(private, rsa.RSAPrivateKey)
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA512()), algorithm=hashes.SHA512(), label=None)
    for certificate, password in zip(certificates, PASSWORDS, strict=True):
        record = emulator.state.pfx[records.graph_id(certificate)]
        assert (record["keyName"], record["providerName"]) == ("KeyB", PROVIDER)
        assert private.decrypt(base64.b64decode(record["encryptedPfxPassword"]), oaep) == password.encode()
    assert emulator.state.stats.posts == len(certificates)  # patched in place, never created again
    assert key_retirement_blockers(old_key) == []

"""A tenant for delivery tests: a connector key, a user with a Windows device, profiles and real PFX files."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from certs.models import Certificate, EncryptionKey
from certs.pfx import encrypt_password
from connectors.models import Connector, ConnectorKey
from delivery import credentials, protocol
from delivery.models import DeviceCredential
from directory.models import Device, DirectoryUser, Platform, WindowsEdition
from portal.audit import Actor
from profiles.models import IntendedPurpose, KeyStorageProvider, Profile

SECRET = "pfxs_the-tenant-enrolment-secret-for-tests"

_KEYS: list[rsa.RSAPrivateKey] = []


def key(n: int) -> rsa.RSAPrivateKey:
    """Keys made once per test process (generation is slow)."""
    while len(_KEYS) <= n:
        _KEYS.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEYS[n]


@pytest.fixture(autouse=True)
def _no_rate_limits(settings: Any) -> None:
    settings.PORTAL_ENFORCE_MFA = False
    settings.DEVICE_POLICY_RECHECK_SECONDS = 0
    # The simulated devices of the process tests check in several times a second.
    settings.DEVICE_API_RATE_PER_MINUTE = 10_000
    cache.clear()


@dataclass
class Tenant:
    connector_key: rsa.RSAPrivateKey | None  # None: a connector agent process holds it
    encryption_key: EncryptionKey
    connector: Connector
    user: DirectoryUser
    device: Device

    def certificate(
        self,
        *,
        purpose: str = IntendedPurpose.SMIME_ENCRYPTION,
        days: int = 365,
        since: int = 1,
        password: str = "Pfx-Password-1",
        user: DirectoryUser | None = None,
    ) -> Certificate:
        owner = user or self.user
        holder = key(5 + Certificate.objects.count() % 3)
        now = timezone.now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, owner.display_name)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Contoso Test CA")]))
            .public_key(holder.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=since))
            .not_valid_after(now + dt.timedelta(days=days))
            .sign(holder, hashes.SHA256())
        )
        pfx = pkcs12.serialize_key_and_certificates(
            b"u", holder, cert, None, serialization.BestAvailableEncryption(password.encode())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        return Certificate.objects.create(
            user=owner,
            upn=owner.upn,
            thumbprint=hashlib.sha1(der, usedforsecurity=False).hexdigest(),
            purpose=purpose,
            subject=f"CN={owner.display_name}",
            issuer="CN=Contoso Test CA",
            serial=str(cert.serial_number),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            key_type="rsa",
            key_size=2048,
            encryption_key=self.encryption_key,
            padding=self.encryption_key.default_padding,
            pfx_blob=pfx,
            encrypted_password=encrypt_password(
                password,
                serialization.load_pem_public_key(self.encryption_key.public_key_pem.encode()),  # type: ignore[arg-type]
                self.encryption_key.default_padding,
            ),
        )

    def profile(self, purpose: str = IntendedPurpose.SMIME_ENCRYPTION, **fields: Any) -> Profile:
        fields.setdefault("platform", Platform.WINDOWS)
        if fields["platform"] == Platform.WINDOWS:
            fields.setdefault("key_storage_provider", KeyStorageProvider.SOFTWARE)
        fields.setdefault("all_users", True)
        return Profile.objects.create(
            name=f"{purpose} {Profile.objects.count()}", intended_purpose=purpose, **fields
        )

    def connector_does_jobs(self) -> dict[str, str]:
        """What the agent does for device jobs, in process: claim, decrypt, re-encrypt, post."""
        from connectors import reencrypt
        from connectors.agent import keystore

        assert self.connector_key is not None
        results = []
        for job in reencrypt.jobs_claim(self.connector, limit=50):
            plain = keystore.decrypt(
                self.connector_key, _b64(job["encrypted_password"]), job["from"]["padding"]
            )
            target = keystore.load_public(job["to"]["public_key_pem"])
            cipher = keystore.encrypt(target, plain, job["to"]["padding"])
            results.append(reencrypt.DeviceResult(job=job["id"], ok=True, encrypted_password=_b64e(cipher)))
        return reencrypt.jobs_complete(self.connector, results)


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


def _b64e(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def directory(
    connector: Connector, connector_key: rsa.RSAPrivateKey | None, encryption_key: EncryptionKey
) -> Tenant:
    user = DirectoryUser.objects.create(upn="alice@contoso.example", display_name="Alice")
    device = Device(
        name="PC-ALICE", primary_user=user, platform=Platform.WINDOWS, os_edition=WindowsEdition.ENTERPRISE
    )
    device.set_os_version("10.0.22631.1")
    device.save()
    credentials.secret_create(Actor.system(), value=SECRET)
    return Tenant(connector_key, encryption_key, connector, user, device)


@pytest.fixture
def tenant(db: None) -> Tenant:
    connector_key = key(0)
    public = connector_key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    fingerprint = hashlib.sha256(
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).hexdigest()
    encryption_key = EncryptionKey.objects.create(
        provider_name="P",
        key_name="K",
        size=2048,
        fingerprint=fingerprint,
        public_key_pem=pem,
        is_default=True,
        possession_proven_at=timezone.now(),
    )
    connector = Connector.objects.create(
        name="Connector A",
        features=["rewrap", "device_reencrypt"],
        credential_hash="x" * 64,
        last_self_tests=[{"name": "key", "ok": True}],
    )
    ConnectorKey.objects.create(
        connector=connector, provider_name="P", key_name="K", fingerprint=fingerprint, size=2048
    )
    return directory(connector, connector_key, encryption_key)


class DeviceClient:
    """The device API through Django's test client, with the device's own key."""

    def __init__(self, client: Client, device: Device, private_key: rsa.RSAPrivateKey) -> None:
        self.client, self.device, self.key = client, device, private_key
        self.credential = ""
        self.sequence = 0

    def post(
        self, path: str, body: dict[str, Any], credential: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        token = self.credential if credential is None else credential
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.post(
            f"/device-api/{path}", json.dumps(body), content_type="application/json", headers=headers
        )
        return response.status_code, response.json()

    def enroll(self, **body: str) -> tuple[int, dict[str, Any]]:
        request = {
            "secret": SECRET,
            "device_id": str(self.device.device_id),
            "platform": self.device.platform,
            "public_key_pem": protocol.public_pem(self.key),
            "proof": protocol.prove(self.key),
        } | body
        status, answer = self.post("enroll", request, credential="")
        if status == 201:
            self.credential = answer["credential"]
        return status, answer

    def check_in(self) -> dict[str, Any]:
        status, answer = self.post("check-in", {})
        assert status == 200, answer
        return answer

    def report(self, *results: dict[str, str], sequence: int | None = None) -> tuple[int, dict[str, Any]]:
        self.sequence = sequence if sequence is not None else self.sequence + 1
        return self.post("report", {"sequence": self.sequence, "results": list(results)})

    @property
    def row(self) -> DeviceCredential:
        return DeviceCredential.objects.get(device=self.device, revoked_at=None)


@pytest.fixture
def pc(tenant: Tenant, client: Client) -> DeviceClient:
    """Alice's Windows PC, enrolled."""
    device = DeviceClient(client, tenant.device, key(1))
    status, answer = device.enroll()
    assert status == 201, answer
    return device


MakeDevice = Callable[..., DeviceClient]

"""Test data for the import pipeline: directory users, connector keys and their PFX files."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from certs import lifecycle
from certs.imports import Entry
from certs.keys import key_add
from certs.models import Certificate, EncryptionKey
from certs.tests.conftest import make_pair, with_cryptography
from directory.models import DirectoryUser
from portal.audit import Actor
from portal.models import ScopeTag

ALICE = "alice@contoso.example"

_CONNECTOR: list[rsa.RSAPrivateKey] = []


def connector_private_key() -> rsa.RSAPrivateKey:
    if not _CONNECTOR:
        _CONNECTOR.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _CONNECTOR[0]


def public_pem() -> bytes:
    return (
        connector_private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def add_key(name: str = "PFXEncryptionKey") -> EncryptionKey:
    return key_add(
        Actor.system(),
        data=public_pem(),
        provider_name="Microsoft Software Key Storage Provider",
        key_name=name,
        default_padding="oaepSha512",
        make_default=True,
        tags=[ScopeTag.default()],
    )


def directory_user(upn: str, name: str | None = None) -> DirectoryUser:
    return DirectoryUser.objects.get_or_create(
        upn=upn, defaults={"display_name": name or upn.split("@")[0].title(), "mail": upn}
    )[0]


def pfx_for(
    upn: str, password: str, *, days: int = 365, kind: str | None = None, cn: str | None = None
) -> bytes:
    """An RSA-2048 PFX (OpenSSL 3 defaults) whose certificate names ``upn`` as e-mail and UPN."""
    now = datetime.now(UTC)
    pair = make_pair(
        kind or f"rsa-{upn}",
        email=upn,
        upn=upn,
        cn=cn or upn,
        not_before=now - timedelta(days=2),
        not_after=now + timedelta(days=days),
    )
    return with_cryptography(pair, password)


def stored_certificate(upn: str = ALICE) -> Certificate:
    """A certificate imported for ``upn`` through the single import, with a new encryption key."""
    directory_user(upn)
    item = lifecycle.certificate_import(
        Actor.system(),
        entry=Entry("a.pfx", pfx_for(upn, "pw"), "pw", upn, "smimeEncryption"),
        key=add_key(),
        tags=[ScopeTag.default()],
    )
    assert item.certificate is not None
    return item.certificate


def upload(name: str, data: bytes) -> io.BytesIO:
    """A file as a form posts it."""
    f = io.BytesIO(data)
    f.name = name
    return f

"""Where connector key publication meets the encryption keys of ``certs``.

The connector only ever sends a public key. It becomes (or matches) an
``EncryptionKey`` so imports can encrypt PFX passwords to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from certs.errors import ServiceError
from certs.keys import key_add
from certs.models import EncryptionKey, Padding
from certs.pfx import load_public_key, public_key_fingerprint
from certs.pfx.problems import ProblemError
from portal.audit import Actor
from portal.models import ScopeTag


class KeyConflict(Exception):
    """Another key already uses this provider and key name."""


@dataclass(frozen=True)
class PublicKey:
    pem: str
    fingerprint: str
    size: int


def parse_public_key(pem: str) -> PublicKey:
    """Raise ``ProblemError`` for anything but an RSA public key of a usable size."""
    key = load_public_key(pem.encode("ascii", "replace"))
    from cryptography.hazmat.primitives import serialization

    text = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(pem=text.decode("ascii"), fingerprint=public_key_fingerprint(key), size=key.key_size)


def encryption_key_for(
    actor: Actor, *, provider_name: str, key_name: str, key: PublicKey, tags: Iterable[ScopeTag] = ()
) -> EncryptionKey:
    """The encryption key with this fingerprint, added (source "connector") if the portal lacks it.

    Must run inside the caller's transaction; the audit row goes with it.
    """
    existing = EncryptionKey.objects.filter(fingerprint=key.fingerprint).first()
    if existing is not None:
        return existing
    if EncryptionKey.objects.filter(provider_name=provider_name, key_name=key_name).exists():
        raise KeyConflict(f"{provider_name} / {key_name} already names a different key")
    try:
        row = key_add(
            actor,
            data=key.pem.encode("ascii"),
            provider_name=provider_name,
            key_name=key_name,
            default_padding=Padding.OAEP_SHA512,
            make_default=False,
            tags=list(tags) or [ScopeTag.default()],
        )
    except ServiceError as exc:
        raise KeyConflict(str(exc)) from exc
    # key_add records uploads; this one came from a connector.
    EncryptionKey.objects.filter(pk=row.pk).update(source=EncryptionKey.Source.CONNECTOR)
    row.source = EncryptionKey.Source.CONNECTOR
    return row


__all__ = ["KeyConflict", "ProblemError", "PublicKey", "encryption_key_for", "parse_public_key"]

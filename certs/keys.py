"""Encryption keys: the connectors' RSA public keys that PFX passwords are encrypted to.

Parsing key files (PEM, CNG blobs) is the PFX engine's (``certs.pfx.keys``); a connector
publishing its key is the connectors app's, which adds the key through ``key_add``. Adding a
key and choosing the default are here, each atomic with its audit row; the page is
``certs.views.keys``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction

from certs.hooks import key_retirement_blockers
from certs.models import EncryptionKey
from certs.pfx import ProblemError, load_public_key
from certs.pfx import public_key_fingerprint as fingerprint_of
from portal import audit
from portal.audit import Actor
from portal.lib import refusal
from portal.lib.refusal import Refused
from portal.models import AuditEvent, ScopeTag

KEYS = "Encryption keys"


@transaction.atomic
def key_add(
    actor: Actor,
    *,
    data: bytes,
    provider_name: str,
    key_name: str,
    default_padding: str,
    make_default: bool,
    tags: Sequence[ScopeTag],
) -> EncryptionKey:
    """Add a connector public key from a PEM or CNG RSAPUBLICBLOB file. Private keys are refused."""
    try:
        public = load_public_key(data)
    except ProblemError as exc:
        raise Refused(exc.code, exc.problem.message) from exc
    fingerprint = fingerprint_of(public)
    if EncryptionKey.objects.filter(fingerprint=fingerprint).exists():
        raise Refused("duplicate_key", "This public key is already in the list.")
    if EncryptionKey.objects.filter(provider_name=provider_name, key_name=key_name).exists():
        raise Refused("duplicate_key_name", "A key with this provider and key name already exists.")
    first = not EncryptionKey.objects.exists()
    if make_default or first:
        EncryptionKey.objects.filter(is_default=True).update(is_default=False)
    key = EncryptionKey(
        provider_name=provider_name,
        key_name=key_name,
        size=public.key_size,
        fingerprint=fingerprint,
        public_key_pem=public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii"),
        default_padding=default_padding,
        is_default=make_default or first,
        created_by=actor.user,
    )
    refusal.full_clean(key)
    key.save()
    key.scope_tags.set(tags)
    fields = ["provider_name", "key_name", "size", "fingerprint", "default_padding", "is_default"]
    changes = audit.changes({}, audit.snapshot(key, fields))
    audit.record(
        actor,
        activity="Add encryption key",
        category=KEYS,
        operation=AuditEvent.Operation.CREATE,
        resources=[audit.resource(key, type="Encryption key", changes=changes)],
    )
    return key


@transaction.atomic
def key_set_default(actor: Actor, *, key: EncryptionKey) -> EncryptionKey:
    previous = EncryptionKey.objects.filter(is_default=True).exclude(pk=key.pk).first()
    EncryptionKey.objects.filter(is_default=True).exclude(pk=key.pk).update(is_default=False)
    EncryptionKey.objects.filter(pk=key.pk).update(is_default=True)
    key.is_default = True
    resources = [
        audit.resource(
            key, type="Encryption key", changes=[{"field": "is_default", "old": False, "new": True}]
        )
    ]
    if previous is not None:
        resources.append(
            audit.resource(
                previous, type="Encryption key", changes=[{"field": "is_default", "old": True, "new": False}]
            )
        )
    audit.record(
        actor,
        activity="Set default encryption key",
        category=KEYS,
        operation=AuditEvent.Operation.UPDATE,
        resources=resources,
    )
    return key


@transaction.atomic
def key_retire(actor: Actor, *, key: EncryptionKey) -> None:
    """Remove a key no password depends on any more, here or in Intune (after a key rotation)."""
    locked = EncryptionKey.objects.select_for_update().get(pk=key.pk)
    if locked.is_default:
        raise Refused(
            "key_is_default", f"{key} is the default key for imports: make another key the default first."
        )
    blockers = key_retirement_blockers(locked)
    if blockers:
        raise Refused("key_in_use", f"{key} cannot be retired yet: " + " ".join(blockers))
    audit.record(
        actor,
        activity="Retire encryption key",
        category=KEYS,
        operation=AuditEvent.Operation.DELETE,
        resources=[audit.resource(locked, type="Encryption key")],
    )
    locked.delete()


@lru_cache(maxsize=32)
def public_key(pem: str) -> rsa.RSAPublicKey:
    """An encryption key's public key, parsed once per process (every chunk of an import uses it)."""
    return load_public_key(pem.encode("ascii"))

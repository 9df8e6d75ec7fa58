"""Where connector key publication meets the encryption keys of ``certs``.

The connector only ever sends a public key, signed with the matching private key
as proof that it holds it. The key becomes (or matches) an ``EncryptionKey`` so
imports can encrypt PFX passwords to it, and, once proven, a key rotation can
re-wrap passwords to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from certs.keys import key_add
from certs.models import EncryptionKey, Padding
from certs.pfx import load_public_key, public_key_fingerprint
from certs.pfx.problems import ProblemError
from connectors.agent import possession
from connectors.events import CATEGORY, connector_actor, record_event
from connectors.models import Connector, ConnectorEvent, ConnectorKey
from portal import audit
from portal.audit import Actor
from portal.lib.refusal import Refused
from portal.models import ScopeTag


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


def _name_conflict(message: str) -> Refused:
    return Refused("key_name_conflict", message, status=409)


def encryption_key_for(
    actor: Actor, *, provider_name: str, key_name: str, key: PublicKey, tags: Iterable[ScopeTag] = ()
) -> EncryptionKey:
    """The encryption key with this fingerprint, added (source "connector") if the portal lacks it.

    Must run inside the caller's transaction; the audit row goes with it. Refuses with
    ``key_name_conflict`` when the key cannot be added under these names.
    """
    existing = EncryptionKey.objects.filter(fingerprint=key.fingerprint).first()
    if existing is not None:
        return existing
    if EncryptionKey.objects.filter(provider_name=provider_name, key_name=key_name).exists():
        raise _name_conflict(f"{provider_name} / {key_name} already names a different key")
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
    except Refused as exc:
        raise _name_conflict(exc.message) from exc
    # key_add records uploads; this one came from a connector.
    EncryptionKey.objects.filter(pk=row.pk).update(source=EncryptionKey.Source.CONNECTOR)
    row.source = EncryptionKey.Source.CONNECTOR
    return row


@transaction.atomic
def key_publish(
    connector: Connector,
    *,
    provider_name: str,
    key_name: str,
    public_key_pem: str,
    proof: str,
    ip: str | None = None,
) -> tuple[ConnectorKey, EncryptionKey]:
    """Record that the connector holds this key (it proves it by signing); add it to the encryption
    keys if it is new."""
    provider_name, key_name = provider_name.strip()[:200], key_name.strip()[:200]
    if not provider_name or not key_name:
        raise Refused("bad_key_name", "Both provider_name and key_name are required.")
    try:
        parsed = parse_public_key(public_key_pem)
    except ProblemError as exc:
        raise Refused("bad_public_key", str(exc)) from exc
    if not possession.holds(parsed.pem, proof, str(connector.code), provider_name, key_name):
        raise Refused(
            "no_proof_of_possession",
            "The proof does not verify with this public key: the connector must sign the key statement "
            "with the matching private key.",
        )
    actor = connector_actor(connector, ip)
    encryption_key = encryption_key_for(
        actor,
        provider_name=provider_name,
        key_name=key_name,
        key=parsed,
        tags=connector.scope_tags.all(),
    )
    # A key first added by hand becomes a re-wrap target once a connector proves it holds it.
    proven_now = encryption_key.possession_proven_at is None
    if proven_now:
        encryption_key.possession_proven_at = timezone.now()
        EncryptionKey.objects.filter(pk=encryption_key.pk).update(
            possession_proven_at=encryption_key.possession_proven_at
        )
    held, created = ConnectorKey.objects.update_or_create(
        connector=connector,
        fingerprint=parsed.fingerprint,
        defaults={
            "provider_name": encryption_key.provider_name,
            "key_name": encryption_key.key_name,
            "size": parsed.size,
        },
    )
    if created:
        record_event(
            connector,
            ConnectorEvent.KEY_PUBLISHED,
            f"Holds key {encryption_key} ({parsed.fingerprint[:16]}…).",
        )
    if created or proven_now:
        proven_change = [
            {"field": "possession_proven_at", "old": None, "new": encryption_key.possession_proven_at}
        ]
        audit.record(
            actor,
            activity="Publish connector key",
            category=CATEGORY,
            operation="action",
            resources=[
                audit.resource(connector, type="Certificate connector"),
                audit.resource(
                    encryption_key,
                    type="Encryption key",
                    name=str(encryption_key),
                    changes=proven_change if proven_now else None,
                ),
            ],
        )
    return held, encryption_key

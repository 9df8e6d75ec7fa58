"""Key rotation reaches Intune: once connectors have re-wrapped a certificate's password to a new key,
Intune's userPFXCertificate is patched with the new keyName, providerName, paddingScheme and
encryptedPfxPassword, so that Intune never keeps passwords wrapped to a key being retired.

A PATCH is idempotent, so a lost answer is simply sent again; the read-back checks the key names.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from certs.models import Certificate, EncryptionKey
from graph.client import GraphClient, GraphError
from graph.connection import connected_client
from graph.models import TenantConnection, UploadRecord
from graph.uploads import RetryLater, _claim, _release, max_attempts
from portal import audit
from portal.models import AuditEvent

State = UploadRecord.State
PATCHED_FIELDS = ("keyName", "providerName", "paddingScheme")


def queue(certificate_ids: Sequence[int]) -> int:
    """Call inside the transaction that re-wrapped ``certificate_ids``: their copies in Intune are re-sent."""
    from graph import tasks

    records = UploadRecord.objects.filter(
        certificate_id__in=list(certificate_ids), state__in=[State.SYNCED, State.RESEND]
    )
    ids = list(records.values_list("pk", flat=True))
    records.update(state=State.RESEND, attempts=0, error={}, queued_at=timezone.now())
    if ids and TenantConnection.current() is not None:
        transaction.on_commit(lambda: [tasks.resend_password.delay(pk) for pk in ids])
    return len(ids)


def password_patch(certificate: Certificate) -> dict[str, Any]:
    key = certificate.encryption_key
    return {
        "@odata.type": "#microsoft.graph.userPFXCertificate",
        "keyName": key.key_name,
        "providerName": key.provider_name,
        "paddingScheme": certificate.padding,
        "encryptedPfxPassword": base64.b64encode(bytes(certificate.encrypted_password)).decode(),
    }


def resend(record_id: int, *, client: GraphClient | None = None) -> str:
    token = _claim(record_id, (State.RESEND,))
    if token is None:
        return "not-claimed"
    record = UploadRecord.objects.get(pk=record_id)
    certificate = (
        Certificate.objects.select_related("encryption_key").filter(pk=record.certificate_id).first()
        if record.certificate_id
        else None
    )
    if certificate is None:
        _release(record_id, token, state=State.FAILED, error={"summary": "The certificate was deleted."})
        return "gone"
    body = password_patch(certificate)
    try:
        client = client or connected_client()
        client.update_pfx(record.graph_id, body)
        back = client.get_pfx(record.graph_id)
        if back is None:
            raise GraphError(f"Intune no longer lists {record.graph_id}", status=404)
        wrong = [f for f in PATCHED_FIELDS if str(back.get(f, "")).lower() != str(body[f]).lower()]
        if wrong:
            raise GraphError("Read-back does not match: " + ", ".join(wrong), status=400)
    except GraphError as exc:
        attempts = record.attempts + 1
        error = exc.to_json() | {"summary": exc.summary()}
        if exc.retryable and attempts < max_attempts():
            _release(record_id, token, attempts=attempts, error=error)
            raise RetryLater(exc.summary()) from exc
        with transaction.atomic():
            _release(record_id, token, state=State.FAILED, attempts=attempts, error=error)
            _audit(record, certificate, AuditEvent.Result.FAILURE, error["summary"])
        return "failed"
    with transaction.atomic():
        _release(
            record_id,
            token,
            state=State.SYNCED,
            error={},
            read_back=back,
            synced_at=timezone.now(),
            key_fingerprint=certificate.encryption_key.fingerprint,
        )
        _audit(record, certificate, AuditEvent.Result.SUCCESS, certificate.encryption_key.fingerprint[:16])
    return "resent"


def _audit(record: UploadRecord, certificate: Certificate, result: str, detail: str) -> None:
    audit.record(
        audit.Actor.system("Intune upload"),
        activity="Re-send certificate password to Intune",
        category="Certificates",
        operation=AuditEvent.Operation.UPDATE,
        result=result,
        resources=[
            audit.resource(
                certificate,
                type="Certificate",
                id=str(certificate.code),
                name=str(certificate),
                changes=[
                    {"field": "encryption key in Intune", "old": record.key_fingerprint[:16], "new": detail}
                ],
            )
        ],
    )


def rotation_counts(
    certificate_ids: Sequence[int], from_fingerprint: str, to_fingerprint: str
) -> dict[str, int]:
    """Of a rotation's certificates in Intune: re-sent, waiting, failed, and still on the old key there."""
    counts = UploadRecord.objects.filter(certificate_id__in=list(certificate_ids)).aggregate(
        in_intune=Count(
            "pk",
            filter=Q(state__in=[State.SYNCED, State.RESEND]) | Q(state=State.FAILED, key_fingerprint__gt=""),
        ),
        resent=Count("pk", filter=Q(state=State.SYNCED, key_fingerprint=to_fingerprint)),
        waiting=Count("pk", filter=Q(state=State.RESEND)),
        failed=Count("pk", filter=Q(state=State.FAILED, key_fingerprint=from_fingerprint)),
    )
    return {k: int(v or 0) for k, v in counts.items()} | {"on_old_key": copies_on_key(from_fingerprint)}


def copies_on_key(fingerprint: str) -> int:
    """How many of Intune's certificates still hold a password wrapped to this key."""
    return UploadRecord.objects.filter(
        key_fingerprint=fingerprint, state__in=[State.SYNCED, State.RESEND, State.FAILED, State.QUEUED]
    ).count()


def intune_blocker(key: EncryptionKey) -> str | None:
    """For ``certs.hooks``: the key cannot be retired while Intune holds passwords wrapped to it."""
    left = copies_on_key(key.fingerprint)
    if not left:
        return None
    return f"Intune still holds {left} certificate password(s) wrapped to {key}; they are re-sent after rotation."

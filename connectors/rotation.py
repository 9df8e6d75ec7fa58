"""Key rotation: re-wrapping every certificate password from one key to another.

Starting a rotation queues one re-wrap job per certificate. Connectors that hold
the old key claim jobs (each job goes to one connector), decrypt the password and
encrypt it to the new key on their machine; the portal only ever stores the
ciphertext they send back. Passwords are re-wrapped only to a key a connector has
proven it holds. Stale claims are handed out again, and a job that used up its
attempts fails, so every rotation finishes.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from certs.models import Certificate, EncryptionKey
from certs.signals import certificates_rewrapped
from connectors import claims
from connectors.events import CATEGORY, connector_actor, record_event
from connectors.models import Connector, ConnectorEvent, ConnectorJob, KeyRotation
from portal import audit
from portal.audit import Actor
from portal.lib.refusal import Refused
from portal.models import ScopeTag

log = logging.getLogger(__name__)

MAX_CLAIM = claims.MAX_CLAIM


NOT_PROVEN_MESSAGE = (
    "Passwords are re-wrapped only to a key a connector of this portal has proven it holds. "
    "{key} was added by hand (for example exported from Microsoft's connector for Intune): it can "
    "encrypt new imports, but nothing shows that its private key is held by a connector rather than "
    "by whoever added it. Start the connector that holds it so that it publishes the key."
)


def refuse_unproven_target(key: EncryptionKey) -> None:
    """Raise ``key_not_proven`` unless a connector has proven it holds ``key``'s private key."""
    if key.possession_proven_at is None:
        raise Refused("key_not_proven", NOT_PROVEN_MESSAGE.format(key=key), status=409)


@transaction.atomic
def rotation_start(actor: Actor, *, from_key: EncryptionKey, to_key: EncryptionKey) -> KeyRotation:
    """Queue a re-wrap job for every certificate whose password is encrypted to ``from_key``."""
    if from_key.pk == to_key.pk:
        raise Refused("same_key", "Choose a different key to rotate to.")
    refuse_unproven_target(to_key)
    if KeyRotation.objects.filter(
        from_fingerprint=from_key.fingerprint, state=KeyRotation.State.RUNNING
    ).exists():
        raise Refused("rotation_running", "A rotation from this key is already running.", status=409)
    rotation = KeyRotation.objects.create(
        from_fingerprint=from_key.fingerprint,
        to_fingerprint=to_key.fingerprint,
        from_label=str(from_key),
        to_label=str(to_key),
        created_by_name=actor.name,
    )
    rotation.scope_tags.set(list(from_key.scope_tags.all()) or [ScopeTag.default()])
    ids = list(Certificate.objects.filter(encryption_key=from_key).values_list("pk", flat=True))
    ConnectorJob.objects.bulk_create(
        [
            ConnectorJob(
                rotation=rotation,
                certificate_id=pk,
                from_fingerprint=from_key.fingerprint,
                to_fingerprint=to_key.fingerprint,
            )
            for pk in ids
        ],
        batch_size=1000,
    )
    rotation.total = len(ids)
    if not ids:
        rotation.state = KeyRotation.State.DONE
        rotation.finished_at = timezone.now()
    rotation.save(update_fields=["total", "state", "finished_at"])
    audit.record(
        actor,
        activity="Start key rotation",
        category=CATEGORY,
        operation="action",
        resources=[
            audit.resource(rotation, type="Key rotation", name=str(rotation)),
            audit.resource(from_key, type="Encryption key", name=str(from_key)),
            audit.resource(to_key, type="Encryption key", name=str(to_key)),
        ],
    )
    return rotation


@transaction.atomic
def rotation_retry(actor: Actor, rotation: KeyRotation) -> int:
    """Put failed jobs back in the queue (resuming a rotation that finished with failures)."""
    count = rotation.jobs.filter(state=ConnectorJob.State.FAILED).update(
        state=ConnectorJob.State.QUEUED,
        attempts=0,
        error="",
        claimed_by=None,
        claimed_at=None,
        finished_at=None,
    )
    if count:
        KeyRotation.objects.filter(pk=rotation.pk).update(state=KeyRotation.State.RUNNING, finished_at=None)
        audit.record(
            actor,
            activity="Retry key rotation",
            category=CATEGORY,
            operation="action",
            resources=[audit.resource(rotation, type="Key rotation", name=f"{rotation} ({count} jobs)")],
        )
    return count


def rotation_progress(rotation: KeyRotation) -> dict[str, int]:
    counts = dict(rotation.jobs.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    progress = {state: int(counts.get(state, 0)) for state in ConnectorJob.State.values}
    progress["total"] = rotation.total
    progress["percent"] = (
        round(100 * (progress["done"] + progress["failed"]) / rotation.total) if rotation.total else 100
    )
    return progress


def jobs_claim(connector: Connector, *, limit: int = 10) -> list[dict[str, Any]]:
    """Claim up to ``limit`` jobs this connector can do (it holds the key); each job goes to one connector."""
    now = timezone.now()
    if not connector.self_tests_ok or "rewrap" not in connector.features:
        return []
    held = list(connector.keys.values_list("fingerprint", flat=True))
    candidates = ConnectorJob.objects.filter(
        claims.claimable(now), kind=ConnectorJob.Kind.REWRAP, from_fingerprint__in=held
    )
    _fail_unproven_targets(connector, candidates, now)
    candidates = candidates.filter(to_fingerprint__in=_proven_fingerprints())
    return [_job_payload(job) for job in claims.claim(connector, candidates, limit=max(1, limit), now=now)]


_OPEN_STATES = (ConnectorJob.State.QUEUED, ConnectorJob.State.CLAIMED)


def _proven_fingerprints() -> QuerySet[EncryptionKey, str]:
    return EncryptionKey.objects.filter(possession_proven_at__isnull=False).values_list(
        "fingerprint", flat=True
    )


def _fail_unproven_targets(connector: Connector, jobs: QuerySet[ConnectorJob], now: datetime) -> None:
    """Re-wrap jobs towards a key no connector has proven it holds are never handed out: they fail
    (queued by a rotation started before the portal checked, or written to the database directly)."""
    unproven = dict(jobs.exclude(to_fingerprint__in=_proven_fingerprints()).values_list("pk", "rotation_id"))
    if not unproven:
        return
    with transaction.atomic():
        failed = ConnectorJob.objects.filter(pk__in=list(unproven), state__in=_OPEN_STATES).update(
            state=ConnectorJob.State.FAILED,
            error="key_not_proven: no connector has proven it holds the key to re-wrap to.",
            claimed_by=None,
            claimed_at=None,
            finished_at=now,
        )
        if failed:
            log.warning("refused %d re-wrap job(s) towards a key without proof of possession", failed)
            for rotation_id in set(unproven.values()) - {None}:
                _finish_rotation_if_done(rotation_id, connector, None)


def _job_payload(job: ConnectorJob) -> dict[str, Any]:
    certificate = Certificate.objects.select_related("encryption_key").filter(pk=job.certificate_id).first()
    to_key = EncryptionKey.objects.filter(fingerprint=job.to_fingerprint).first()
    payload: dict[str, Any] = {"id": str(job.code), "kind": job.kind}
    if (
        certificate is None
        or to_key is None
        or to_key.possession_proven_at is None
        or certificate.encryption_key.fingerprint != job.from_fingerprint
    ):
        payload["skip"] = "The certificate or key changed since the job was queued."
        return payload
    from_key = certificate.encryption_key
    payload.update(
        {
            "from": {
                "fingerprint": from_key.fingerprint,
                "provider_name": from_key.provider_name,
                "key_name": from_key.key_name,
                "padding": certificate.padding,
            },
            "to": {
                "fingerprint": to_key.fingerprint,
                "public_key_pem": to_key.public_key_pem,
                "padding": to_key.default_padding,
            },
            "encrypted_password": base64.b64encode(bytes(certificate.encrypted_password)).decode("ascii"),
        }
    )
    return payload


@dataclass(frozen=True)
class JobResult:
    job: str
    ok: bool
    encrypted_password: str = ""
    error: str = ""
    code: str = ""


@transaction.atomic
def jobs_complete(
    connector: Connector, results: Sequence[JobResult], *, ip: str | None = None
) -> dict[str, str]:
    """Apply the connector's results for jobs it claimed; the portal only ever stores ciphertext."""
    now = timezone.now()
    outcome: dict[str, str] = {}
    changed: list[dict[str, Any]] = []
    rotations: set[int] = set()
    for result in results:
        job = (
            ConnectorJob.objects.select_for_update()
            .filter(
                code=result.job,
                kind=ConnectorJob.Kind.REWRAP,
                claimed_by=connector,
                state=ConnectorJob.State.CLAIMED,
            )
            .first()
        )
        if job is None:
            outcome[result.job] = "not_claimed"
            continue
        if job.rotation_id:
            rotations.add(job.rotation_id)
        outcome[result.job] = _apply(connector, job, result, now, changed)
    if changed:
        certificates_rewrapped.send(KeyRotation, certificate_ids=[int(r["id"]) for r in changed])
        audit.record(
            connector_actor(connector, ip),
            activity="Re-wrap certificate passwords",
            category=CATEGORY,
            operation="update",
            resources=changed,
        )
    for rotation_id in rotations:
        _finish_rotation_if_done(rotation_id, connector, ip)
    return outcome


def _apply(
    connector: Connector, job: ConnectorJob, result: JobResult, now: datetime, changed: list[dict[str, Any]]
) -> str:
    to_key = EncryptionKey.objects.filter(
        fingerprint=job.to_fingerprint, possession_proven_at__isnull=False
    ).first()
    ciphertext = b""
    if result.ok and to_key is not None:
        try:
            ciphertext = base64.b64decode(result.encrypted_password, validate=True)
        except (binascii.Error, ValueError):
            ciphertext = b""
    if not result.ok or to_key is None or len(ciphertext) != (to_key.size + 7) // 8:
        error = (result.error or "The result is not a ciphertext for the new key.")[:500]
        final = job.attempts >= ConnectorJob.MAX_ATTEMPTS
        job.state = ConnectorJob.State.FAILED if final else ConnectorJob.State.QUEUED
        job.error, job.claimed_by, job.claimed_at = error, None, None
        job.finished_at = now if final else None
        job.save(update_fields=["state", "error", "claimed_by", "claimed_at", "finished_at"])
        event_id = ConnectorEvent.REENCRYPT_FAILURE if final else ConnectorEvent.REENCRYPT_RETRY
        record_event(
            connector, event_id, f"Re-wrap of certificate {job.certificate_id} failed: {error}", "error"
        )
        return "failed" if final else "retry"
    updated = Certificate.objects.filter(
        pk=job.certificate_id, encryption_key__fingerprint=job.from_fingerprint
    ).update(
        encrypted_password=ciphertext, encryption_key=to_key, padding=to_key.default_padding, updated_at=now
    )
    job.state, job.finished_at = ConnectorJob.State.DONE, now
    job.error = "" if updated else "The certificate changed or was deleted meanwhile; nothing to do."
    job.save(update_fields=["state", "finished_at", "error"])
    if updated:
        record_event(
            connector,
            ConnectorEvent.REENCRYPT_SUCCESS,
            f"Re-wrapped certificate {job.certificate_id} to {to_key}.",
        )
        changed.append(
            audit.resource(
                type="Certificate",
                id=str(job.certificate_id),
                name=f"certificate {job.certificate_id}",
                changes=[
                    {
                        "field": "encryption_key",
                        "old": job.from_fingerprint[:16],
                        "new": to_key.fingerprint[:16],
                    }
                ],
            )
        )
    return "done"


def _finish_rotation_if_done(rotation_id: int, connector: Connector, ip: str | None) -> None:
    open_jobs = ConnectorJob.objects.filter(
        rotation_id=rotation_id, state__in=[ConnectorJob.State.QUEUED, ConnectorJob.State.CLAIMED]
    )
    if open_jobs.exists():
        return
    failed = ConnectorJob.objects.filter(rotation_id=rotation_id, state=ConnectorJob.State.FAILED).exists()
    state = KeyRotation.State.FAILED if failed else KeyRotation.State.DONE
    if KeyRotation.objects.filter(pk=rotation_id, state=KeyRotation.State.RUNNING).update(
        state=state, finished_at=timezone.now()
    ):
        rotation = KeyRotation.objects.get(pk=rotation_id)
        audit.record(
            connector_actor(connector, ip),
            activity="Finish key rotation",
            category=CATEGORY,
            operation="action",
            result="failure" if failed else "success",
            resources=[audit.resource(rotation, type="Key rotation", name=str(rotation))],
        )


def fail_exhausted_jobs(now: datetime) -> None:
    """Stale claims that used up their attempts fail, so a rotation can finish."""
    for job in claims.exhausted(ConnectorJob.Kind.REWRAP, now).select_related("claimed_by"):
        with transaction.atomic():
            if (
                ConnectorJob.objects.filter(pk=job.pk, state=ConnectorJob.State.CLAIMED).update(
                    state=ConnectorJob.State.FAILED, error="No connector finished the job.", finished_at=now
                )
                and job.rotation_id
                and job.claimed_by is not None
            ):
                _finish_rotation_if_done(job.rotation_id, job.claimed_by, None)


def pending_jobs_for(connector: Connector) -> int:
    held = list(connector.keys.values_list("fingerprint", flat=True))
    return ConnectorJob.objects.filter(claims.claimable(timezone.now()), from_fingerprint__in=held).count()


def release_claims(connector: Connector) -> None:
    """A revoked or deleted connector's claims go back to the queue now, not after the claim timeout."""
    ConnectorJob.objects.filter(claimed_by=connector, state=ConnectorJob.State.CLAIMED).update(
        state=ConnectorJob.State.QUEUED, claimed_by=None, claimed_at=None
    )

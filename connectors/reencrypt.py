"""Re-encrypting a certificate's password to a device's key: the connectors' half of delivery.

Delivery queues one job per certificate x device key (``ConnectorJob.Kind.DEVICE``). A connector
that holds the certificate's encryption key claims it (one conditional UPDATE for a batch; each
job goes to one connector), decrypts the password in memory and encrypts it to the device's
public key with RSA-OAEP SHA-256 (``PADDING``); the portal keeps only that ciphertext, after
checking it is one block of the device key's size. A claim older than the connector job timeout
belongs to a connector that died and is handed out again, so a job survives ``kill -9`` of the
agent; a result counts only from the connector holding the claim, so a job is done exactly once.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from certs.models import Certificate
from connectors import claims
from connectors.events import CATEGORY, connector_actor, record_event
from connectors.models import Connector, ConnectorEvent, ConnectorJob
from connectors.signals import device_jobs_failed
from portal import audit
from portal.lib import lean

log = logging.getLogger(__name__)

FEATURE = "device_reencrypt"
PADDING = "oaepSha256"
MAX_CLAIM = claims.MAX_CLAIM
# Codes an agent may give a failure; anything else is reported as ``reencrypt_failed``.
FAILURE_CODES = frozenset({"key_not_held", "decrypt_failed", "bad_device_key", "reencrypt_failed"})


def jobs_claim(connector: Connector, *, limit: int = 20) -> list[dict[str, Any]]:
    """Claim up to ``limit`` device jobs for keys this connector holds, in three queries."""
    if limit <= 0 or not connector.self_tests_ok or FEATURE not in connector.features:
        return []
    now = timezone.now()
    held = list(connector.keys.values_list("fingerprint", flat=True))
    if not held:
        return []
    open_jobs = ConnectorJob.objects.filter(kind=ConnectorJob.Kind.DEVICE, from_fingerprint__in=held)
    return _payloads(claims.claim(connector, open_jobs, limit=limit, now=now))


def _payloads(jobs: list[ConnectorJob]) -> list[dict[str, Any]]:
    certificates = {
        c.pk: c
        for c in Certificate.objects.select_related("encryption_key").filter(
            pk__in=[j.certificate_id for j in jobs]
        )
    }
    payloads = []
    for job in jobs:
        certificate = certificates.get(job.certificate_id)
        if certificate is None:
            _finish_failed(
                job, "certificate_deleted: the certificate was deleted before it was re-encrypted."
            )
            continue
        key = certificate.encryption_key
        if key.fingerprint != job.from_fingerprint:
            # Re-wrapped to another key since queued: back to the queue for whoever holds that one.
            ConnectorJob.objects.filter(pk=job.pk, state=ConnectorJob.State.CLAIMED).update(
                state=ConnectorJob.State.QUEUED,
                from_fingerprint=key.fingerprint,
                claimed_by=None,
                claimed_at=None,
                attempts=F("attempts") - 1,
            )
            continue
        payloads.append(
            {
                "id": str(job.code),
                "kind": ConnectorJob.Kind.DEVICE,
                "from": {
                    "fingerprint": key.fingerprint,
                    "provider_name": key.provider_name,
                    "key_name": key.key_name,
                    "padding": certificate.padding,
                },
                "to": {
                    "fingerprint": job.to_fingerprint,
                    "public_key_pem": job.device_public_key,
                    "padding": PADDING,
                },
                "encrypted_password": base64.b64encode(bytes(certificate.encrypted_password)).decode("ascii"),
            }
        )
    return payloads


def _finish_failed(job: ConnectorJob, error: str) -> None:
    if ConnectorJob.objects.filter(
        pk=job.pk, state__in=[ConnectorJob.State.QUEUED, ConnectorJob.State.CLAIMED]
    ).update(state=ConnectorJob.State.FAILED, error=error[:500], finished_at=timezone.now()):
        _announce_failed([job.pk])


def _announce_failed(ids: list[int]) -> None:
    transaction.on_commit(lambda: device_jobs_failed.send(sender=ConnectorJob, job_ids=ids))


@dataclass(frozen=True)
class DeviceResult:
    job: str
    ok: bool
    encrypted_password: str = ""
    code: str = ""
    error: str = ""


def device_job_codes(codes: Sequence[str]) -> set[str]:
    """Which of these job ids are device jobs (the rest are re-wraps)."""
    return {
        str(code)
        for code in ConnectorJob.objects.filter(
            code__in=[c for c in codes if _is_uuid(c)], kind=ConnectorJob.Kind.DEVICE
        ).values_list("code", flat=True)
    }


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _block_size(pem: str) -> int:
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeError):
        return -1
    return (getattr(key, "key_size", -8) + 7) // 8


@transaction.atomic
def jobs_complete(
    connector: Connector, results: Sequence[DeviceResult], *, ip: str | None = None
) -> dict[str, str]:
    """Keep the ciphertexts of jobs this connector claimed; failures go back to the queue or fail."""
    now = timezone.now()
    outcome: dict[str, str] = {}
    done: list[dict[str, Any]] = []
    failed: list[int] = []
    # Successes are written together: a connector posts up to MAX_CLAIM results at a time.
    finished: list[ConnectorJob] = []
    events: list[ConnectorEvent] = []
    jobs = {
        str(j.code): j
        for j in ConnectorJob.objects.select_for_update().filter(
            code__in=[r.job for r in results if _is_uuid(r.job)],
            kind=ConnectorJob.Kind.DEVICE,
            claimed_by=connector,
            state=ConnectorJob.State.CLAIMED,
        )
    }
    for result in results:
        job = jobs.get(result.job)
        if job is None:
            outcome[result.job] = "not_claimed"
            continue
        ciphertext = b""
        if result.ok:
            try:
                ciphertext = base64.b64decode(result.encrypted_password, validate=True)
            except (binascii.Error, ValueError):
                ciphertext = b""
        if result.ok and len(ciphertext) == _block_size(job.device_public_key):
            job.state, job.device_password, job.finished_at, job.error = (
                ConnectorJob.State.DONE,
                ciphertext,
                now,
                "",
            )
            finished.append(job)
            events.append(
                ConnectorEvent(
                    connector=connector,
                    event_id=ConnectorEvent.REENCRYPT_SUCCESS,
                    message=f"Re-encrypted the password of certificate {job.certificate_id} to device key "
                    f"{job.to_fingerprint[:16]}.",
                    occurred_at=now,
                )
            )
            done.append(
                audit.resource(
                    type="Certificate",
                    id=str(job.certificate_id),
                    name=f"certificate {job.certificate_id} for device key {job.to_fingerprint[:16]}",
                    scope=Certificate,
                )
            )
            outcome[result.job] = "done"
            continue
        code = result.code if result.code in FAILURE_CODES else "reencrypt_failed"
        if result.ok:
            code, message = "bad_ciphertext", "The result is not a ciphertext for the device key."
        else:
            message = result.error or "The connector could not re-encrypt the password."
        # A connector without the key will not get it back by trying again.
        final = job.attempts >= ConnectorJob.MAX_ATTEMPTS or code == "key_not_held"
        job.state = ConnectorJob.State.FAILED if final else ConnectorJob.State.QUEUED
        job.error = f"{code}: {message}"[:500]
        job.claimed_by, job.claimed_at = None, None
        job.finished_at = now if final else None
        job.save(update_fields=["state", "error", "claimed_by", "claimed_at", "finished_at"])
        record_event(
            connector,
            ConnectorEvent.REENCRYPT_FAILURE if final else ConnectorEvent.REENCRYPT_RETRY,
            f"Re-encryption of certificate {job.certificate_id} to device key {job.to_fingerprint[:16]} "
            f"failed ({code}): {message}",
            "error" if final else "warning",
        )
        if final:
            failed.append(job.pk)
        outcome[result.job] = "failed" if final else "retry"
    # One plain UPDATE a job: bulk_update's CASE over up to MAX_CLAIM rows and four fields cost
    # the web process more than the round trips it saves.
    for job in finished:
        lean.update(
            ConnectorJob,
            job.pk,
            {
                "state": job.state,
                "device_password": job.device_password,
                "finished_at": job.finished_at,
                "error": job.error,
            },
        )
    lean.insert(events)
    if done:
        audit.record(
            connector_actor(connector, ip),
            activity="Re-encrypt certificate passwords to device keys",
            category=CATEGORY,
            operation="action",
            resources=done,
        )
    if failed:
        _announce_failed(failed)
    return outcome


def fail_exhausted_jobs(now: datetime) -> None:
    """Claims that lapsed after the last attempt fail, so a device's state does not stay Pending."""
    ids = list(claims.exhausted(ConnectorJob.Kind.DEVICE, now).values_list("pk", flat=True))
    if not ids:
        return
    with transaction.atomic():
        ConnectorJob.objects.filter(pk__in=ids, state=ConnectorJob.State.CLAIMED).update(
            state=ConnectorJob.State.FAILED,
            error="reencrypt_failed: no connector finished the job.",
            finished_at=now,
        )
        _announce_failed(ids)

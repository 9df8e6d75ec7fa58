"""Intune's copy of each certificate: queueing uploads, uploading, deleting, and the sweep that hands
work held by dead workers to the queue again.

Writes to our tables happen in ``transaction.atomic`` with their audit row; Graph calls happen
outside any transaction, paced by the tenant's write budget (see ``connection.connected_client``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from certs.models import Certificate, GraphState
from directory.models import not_in_entra
from graph import profile_sync
from graph.client import GraphClient, GraphError
from graph.connection import NOT_CONNECTED, connected_client
from graph.models import ReconcileRun, SyncRun, TenantConnection, UploadRecord
from graph.records import certificate_body, differences, graph_id, read_back_problems
from portal import audit
from portal.lib import runs
from portal.lib.refusal import Refused
from portal.models import AuditEvent

CERTIFICATE_CATEGORY = "Certificates"
Op = AuditEvent.Operation


class RetryLater(Exception):
    """A Graph step failed in a way that may pass (throttling, outage); the task tries again."""


HELD_MESSAGE = (
    "Not uploaded: Intune does not know this user (added by CSV import and never found in Entra ID, "
    "removed, or gone from Entra ID at the last directory sync). Upload it again once a directory "
    "sync finds the user."
)


def max_attempts() -> int:
    return int(settings.GRAPH_UPLOAD_MAX_ATTEMPTS)


def held_for_unknown_users(certificates: QuerySet[Certificate]) -> QuerySet[Certificate]:
    """Those of ``certificates`` whose user Intune does not know: they are flagged, not uploaded."""
    return certificates.filter(not_in_entra("user__"))


def _hold(certificates: QuerySet[Certificate]) -> int:
    held = held_for_unknown_users(certificates)
    # A copy already in Intune stays marked as such; the rest say why they wait.
    held.exclude(graph_state=GraphState.SYNCED).update(
        graph_state=GraphState.NOT_UPLOADED, graph_error=HELD_MESSAGE
    )
    return held.count()


def queue_upload(certificate: Certificate) -> UploadRecord:
    """Mark a stored certificate for upload and send the task once the transaction commits.

    Refuses with ``user_not_in_entra`` for a user Intune does not know (see ``held_for_unknown_users``):
    uploading would only fail.
    """
    from graph import tasks

    if not certificate.user.in_entra:
        raise Refused("user_not_in_entra", f"{certificate.user.upn}: {HELD_MESSAGE}")
    with transaction.atomic():
        record, _ = UploadRecord.objects.update_or_create(
            graph_id=graph_id(certificate),
            defaults={
                "certificate": certificate,
                "upn": certificate.user.upn,
                "thumbprint": certificate.thumbprint.lower(),
                "state": UploadRecord.State.QUEUED,
                "attempts": 0,
                "queued_at": timezone.now(),
                "error": {},
            },
        )
        Certificate.objects.filter(pk=certificate.pk).update(graph_state=GraphState.PENDING, graph_error="")
        transaction.on_commit(lambda: tasks.upload_certificate.delay(record.pk))
    return record


def queue_uploads(certificate_ids: Sequence[int]) -> int:
    """``queue_upload`` for many certificates at once (a whole import chunk): a few queries, one task each.

    Certificates of users Intune does not know are flagged with the reason instead (not counted).
    """
    from graph import tasks

    certificates = Certificate.objects.select_related("user").filter(pk__in=list(certificate_ids))
    if _hold(certificates):
        certificates = certificates.exclude(not_in_entra("user__"))
    now = timezone.now()
    rows = {
        graph_id(c): UploadRecord(
            graph_id=graph_id(c),
            certificate_id=c.pk,
            upn=c.user.upn,
            thumbprint=c.thumbprint.lower(),
            state=UploadRecord.State.QUEUED,
            attempts=0,
            queued_at=now,
            error={},
        )
        for c in certificates
    }
    if not rows:
        return 0
    with transaction.atomic():
        # Claims are left alone: a worker in the middle of one of these records finishes it.
        UploadRecord.objects.bulk_create(
            list(rows.values()),
            batch_size=500,
            update_conflicts=True,
            unique_fields=["graph_id"],
            update_fields=["certificate", "upn", "thumbprint", "state", "attempts", "queued_at", "error"],
        )
        record_ids = list(UploadRecord.objects.filter(graph_id__in=list(rows)).values_list("pk", flat=True))
        Certificate.objects.filter(pk__in=[r.certificate_id for r in rows.values()]).update(
            graph_state=GraphState.PENDING, graph_error=""
        )
        transaction.on_commit(lambda: [tasks.upload_certificate.delay(pk) for pk in record_ids])
    return len(record_ids)


def not_in_intune(certificates: QuerySet[Certificate]) -> QuerySet[Certificate]:
    """Those of ``certificates`` that are not in Intune and not on their way: never uploaded (stored
    before the tenant was connected, or found missing by reconcile) or failed."""
    return certificates.filter(graph_state__in=[GraphState.NOT_UPLOADED, GraphState.FAILED])


def upload_outstanding(actor: audit.Actor, certificates: QuerySet[Certificate]) -> int:
    """Queue every certificate of ``certificates`` that is ``not_in_intune``; returns how many."""
    if TenantConnection.current() is None:
        raise Refused(NOT_CONNECTED, "Connect the tenant first.")
    with transaction.atomic():
        queued = queue_uploads(list(not_in_intune(certificates).values_list("pk", flat=True)))
        if queued:
            audit.record(
                actor,
                activity="Upload certificates to Intune",
                category=CERTIFICATE_CATEGORY,
                operation=Op.ACTION,
                resources=[
                    audit.resource(
                        type="Certificates",
                        id="",
                        name=f"{queued} certificate(s) not in Intune",
                        changes=[{"field": "graph_state", "old": "not uploaded or failed", "new": "pending"}],
                    )
                ],
            )
    return queued


def _claim(record_id: int, states: tuple[str, ...]) -> uuid.UUID | None:
    """Take the record for this worker (a conditional UPDATE: exactly one worker wins)."""
    token = uuid.uuid4()
    won = UploadRecord.objects.filter(pk=record_id, state__in=states, claim__isnull=True).update(
        claim=token, claimed_at=timezone.now()
    )
    return token if won == 1 else None


def _release(record_id: int, token: uuid.UUID, **changes: Any) -> None:
    UploadRecord.objects.filter(pk=record_id, claim=token).update(claim=None, claimed_at=None, **changes)


def upload(record_id: int, *, client: GraphClient | None = None) -> str:
    """Put one certificate into Intune, exactly once, however often it is retried.

    The record id is derived from the user and thumbprint, so the task first asks
    whether Intune has it; only if not does it POST. A conflict on POST (a previous
    attempt landed) counts as created. Then it reads the record back and checks it.
    """
    token = _claim(record_id, (UploadRecord.State.QUEUED,))
    if token is None:
        return "not-claimed"
    record = UploadRecord.objects.get(pk=record_id)
    certificate = (
        Certificate.objects.select_related("user", "encryption_key").filter(pk=record.certificate_id).first()
        if record.certificate_id
        else None
    )
    if certificate is None:
        _release(
            record_id,
            token,
            state=UploadRecord.State.FAILED,
            error={"summary": "The certificate was deleted."},
        )
        return "gone"
    try:
        client = client or connected_client()
        existing = client.get_pfx(record.graph_id)
        if existing is None:
            client.create_pfx(certificate_body(certificate))
            existing = client.get_pfx(record.graph_id)
            if existing is None:
                raise GraphError(f"Intune does not list {record.graph_id} after creating it")
        elif differences(certificate, existing):
            client.update_pfx(record.graph_id, certificate_body(certificate))
            existing = client.get_pfx(record.graph_id) or {}
        problems = read_back_problems(certificate, existing)
        if problems:
            raise GraphError(
                "Read-back does not match: " + "; ".join(problems), status=400, body=str(existing)
            )
    except Refused as exc:
        _fail(record, certificate, token, {"summary": exc.message})
        return "failed"
    except GraphError as exc:
        attempts = record.attempts + 1
        if exc.retryable and attempts < max_attempts():
            _release(record_id, token, attempts=attempts, error=exc.to_json())
            raise RetryLater(exc.summary()) from exc
        _fail(record, certificate, token, {**exc.to_json(), "summary": exc.summary()})
        return "failed"
    now = timezone.now()
    with transaction.atomic():
        _release(
            record_id,
            token,
            state=UploadRecord.State.SYNCED,
            synced_at=now,
            error={},
            read_back=existing,
            attempts=record.attempts + 1,
            key_fingerprint=certificate.encryption_key.fingerprint,
        )
        Certificate.objects.filter(pk=certificate.pk).update(
            graph_state=GraphState.SYNCED, graph_error="", graph_synced_at=now
        )
        _audit_upload(certificate, AuditEvent.Result.SUCCESS, "graph id", record.graph_id)
    return "synced"


def _fail(record: UploadRecord, certificate: Certificate, token: uuid.UUID, error: dict[str, Any]) -> None:
    with transaction.atomic():
        _release(record.pk, token, state=UploadRecord.State.FAILED, attempts=record.attempts + 1, error=error)
        Certificate.objects.filter(pk=certificate.pk).update(
            graph_state=GraphState.FAILED, graph_error=str(error.get("summary", ""))[:500]
        )
        _audit_upload(certificate, AuditEvent.Result.FAILURE, "error", error.get("summary", ""))


def _audit_upload(certificate: Certificate, result: str, field: str, value: Any) -> None:
    audit.record(
        audit.Actor.system("Intune upload"),
        activity="Upload certificate to Intune",
        category=CERTIFICATE_CATEGORY,
        operation=Op.CREATE,
        result=result,
        resources=[
            audit.resource(
                certificate,
                type="Certificate",
                id=str(certificate.code),
                name=str(certificate),
                changes=[{"field": field, "old": None, "new": value}],
            )
        ],
    )


def certificate_deleted(certificate: Certificate) -> UploadRecord | None:
    """Call inside the transaction that deletes ``certificate``: its copy in Intune is deleted after commit."""
    from graph import tasks

    record_id = graph_id(certificate)
    record = UploadRecord.objects.filter(graph_id=record_id).first()
    if record is None and certificate.graph_state == GraphState.NOT_UPLOADED:
        return None
    record, _ = UploadRecord.objects.update_or_create(
        graph_id=record_id,
        defaults={
            "certificate": None,
            "upn": certificate.user.upn,
            "thumbprint": certificate.thumbprint.lower(),
            "state": UploadRecord.State.DELETING,
            "attempts": 0,
            "queued_at": timezone.now(),
            "error": {},
        },
    )
    transaction.on_commit(lambda: tasks.delete_from_intune.delay(record.pk))
    return record


def queue_delete(graph_record_id: str, *, upn: str = "", thumbprint: str = "") -> UploadRecord:
    from graph import tasks

    with transaction.atomic():
        record, _ = UploadRecord.objects.update_or_create(
            graph_id=graph_record_id,
            defaults={
                "certificate": None,
                "state": UploadRecord.State.DELETING,
                "attempts": 0,
                "queued_at": timezone.now(),
                "error": {},
                "upn": upn,
                "thumbprint": thumbprint or graph_record_id.rsplit("-", 1)[-1],
            },
        )
        transaction.on_commit(lambda: tasks.delete_from_intune.delay(record.pk))
    return record


def delete(record_id: int, *, client: GraphClient | None = None) -> str:
    """Delete the record in Intune and read it back until it is gone."""
    token = _claim(record_id, (UploadRecord.State.DELETING,))
    if token is None:
        return "not-claimed"
    record = UploadRecord.objects.get(pk=record_id)
    try:
        client = client or connected_client()
        if not client.delete_pfx(record.graph_id):
            raise GraphError(f"Intune still lists {record.graph_id} after deleting it", status=503)
    except (GraphError, Refused) as exc:
        attempts = record.attempts + 1
        error = exc.to_json() if isinstance(exc, GraphError) else {"summary": str(exc)}
        if isinstance(exc, GraphError) and exc.retryable and attempts < max_attempts():
            _release(record_id, token, attempts=attempts, error=error)
            raise RetryLater(exc.summary()) from exc
        with transaction.atomic():
            _release(record_id, token, state=UploadRecord.State.DELETE_FAILED, attempts=attempts, error=error)
            _audit_delete(record, AuditEvent.Result.FAILURE)
        return "failed"
    with transaction.atomic():
        _release(record_id, token, state=UploadRecord.State.DELETED, error={}, attempts=record.attempts + 1)
        _audit_delete(record, AuditEvent.Result.SUCCESS)
    return "deleted"


def _audit_delete(record: UploadRecord, result: str) -> None:
    audit.record(
        audit.Actor.system("Intune upload"),
        activity="Delete certificate from Intune",
        category=CERTIFICATE_CATEGORY,
        operation=Op.DELETE,
        result=result,
        resources=[
            audit.resource(
                type="Intune certificate",
                id=record.graph_id,
                name=f"{record.upn} {record.thumbprint[:12]}",
                # The portal's certificate is gone; its tags with it.
                scope=Certificate,
            )
        ],
    )


def sweep(*, claimed_before: dt.datetime | None = None, queued_before: dt.datetime | None = None) -> int:
    """Hand work held by dead workers (or lost with their messages) to the queue again."""
    from graph import tasks

    now = timezone.now()
    claimed_before = claimed_before or now - dt.timedelta(seconds=settings.GRAPH_CLAIM_TIMEOUT_SECONDS)
    queued_before = queued_before or now - dt.timedelta(seconds=settings.GRAPH_REQUEUE_AFTER_SECONDS)
    active = (UploadRecord.State.QUEUED, UploadRecord.State.DELETING, UploadRecord.State.RESEND)
    stalled = UploadRecord.objects.filter(state__in=active).filter(
        Q(claim__isnull=False, claimed_at__lt=claimed_before)
        | Q(claim__isnull=True, queued_at__lt=queued_before)
    )
    for model in (ReconcileRun, SyncRun):
        runs.fail_stalled(model, started_before=claimed_before, now=now)
    count = profile_sync.sweep(claimed_before=claimed_before, queued_before=queued_before)
    for record in stalled.only("pk", "state"):
        released = (
            UploadRecord.objects.filter(pk=record.pk, state=record.state)
            .filter(Q(claim__isnull=True) | Q(claimed_at__lt=claimed_before))
            .update(claim=None, claimed_at=None, queued_at=now)
        )
        if released:
            count += 1
            task = {
                UploadRecord.State.QUEUED: tasks.upload_certificate,
                UploadRecord.State.DELETING: tasks.delete_from_intune,
                UploadRecord.State.RESEND: tasks.resend_password,
            }[UploadRecord.State(record.state)]
            task.delay(record.pk)
    return count

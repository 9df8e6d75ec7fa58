"""Everything the portal does with Microsoft Graph: the connection, uploads, deletions and the write budget.

Reconcile lives in :mod:`graph.reconcile` and directory sync in :mod:`graph.sync`.
Writes to our tables happen in ``transaction.atomic`` with their audit row;
Graph calls happen outside any transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from certs.models import Certificate, GraphState
from directory.models import not_in_entra
from graph.budget import WriteBudget
from graph.client import CLOUDS, REDACTED_BLOB, GraphClient, GraphError, TokenSource
from graph.models import (
    ReconcileRun,
    SyncRun,
    TenantConnection,
    UploadRecord,
    default_write_limit,
    default_write_window,
)
from graph.secrets import seal, unseal
from portal import audit
from portal.models import AuditEvent

log = logging.getLogger(__name__)

CONNECTION_CATEGORY = "Microsoft Intune"
CERTIFICATE_CATEGORY = "Certificates"
Op = AuditEvent.Operation


class NotConnected(Exception):
    """No tenant connection is configured yet."""


class RetryLater(Exception):
    """A Graph step failed in a way that may pass (throttling, outage); the task tries again."""


class UserNotInEntra(ValueError):
    """The certificate's user is not one Intune knows; uploading would only fail."""


HELD_MESSAGE = (
    "Not uploaded: Intune does not know this user (added by CSV import and never found in Entra ID, "
    "removed, or gone from Entra ID at the last directory sync). Upload it again once a directory "
    "sync finds the user."
)


def max_attempts() -> int:
    return int(getattr(settings, "GRAPH_UPLOAD_MAX_ATTEMPTS", 8))


# --- The connection --------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionInput:
    tenant_id: str
    client_id: str
    cloud: str
    credential_kind: str
    secret: str = ""
    certificate_pem: str = ""
    authority_url: str = ""
    graph_url: str = ""
    ca_certificate: str = ""
    write_limit: int = field(default_factory=default_write_limit)
    write_window_seconds: float = field(default_factory=default_write_window)


def certificate_credential(pem: str) -> dict[str, str]:
    """msal's certificate credential from a PEM holding the private key and its certificate."""
    data = pem.encode()
    key = serialization.load_pem_private_key(data, password=None)
    cert = x509.load_pem_x509_certificate(data)
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        raise ValueError("The private key does not belong to the certificate.")
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "private_key": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "thumbprint": hashlib.sha1(der, usedforsecurity=False).hexdigest(),
        "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }


def save_connection(actor: audit.Actor, data: ConnectionInput) -> TenantConnection:
    """Create or change the connection. A blank credential keeps the stored one (it is never shown again)."""
    with transaction.atomic():
        connection = (
            TenantConnection.objects.select_for_update().filter(pk=TenantConnection.SINGLETON).first()
        )
        fields = [
            "tenant_id",
            "client_id",
            "cloud",
            "credential_kind",
            "authority_url",
            "graph_url",
            "ca_certificate",
            "write_limit",
            "write_window_seconds",
        ]
        before = audit.snapshot(connection, fields) if connection else {}
        connection = connection or TenantConnection(pk=TenantConnection.SINGLETON)
        for name in fields:
            value = getattr(data, name)
            setattr(connection, name, value.strip() if isinstance(value, str) else value)
        changes = audit.changes(before, audit.snapshot(connection, fields))
        credential: dict[str, str] | None = None
        if data.credential_kind == TenantConnection.Credential.SECRET and data.secret:
            credential = {"secret": data.secret}
        elif data.credential_kind == TenantConnection.Credential.CERTIFICATE and data.certificate_pem:
            credential = certificate_credential(data.certificate_pem)
        if credential is None and not connection.credential_encrypted:
            raise ValueError("A client secret or a certificate is required.")
        if credential is None and before.get("credential_kind") not in (None, data.credential_kind):
            raise ValueError("Give the new credential when changing its kind.")
        if credential is not None:
            connection.credential_encrypted = seal(credential)
            connection.certificate_thumbprint = credential.get("thumbprint", "")
            connection.credential_set_at = timezone.now()
            changes.append({"field": "credential", "old": "(hidden)", "new": "(replaced)"})
        connection.updated_by_name = actor.name
        connection.test_ok = None
        connection.save()
        audit.record(
            actor,
            activity="Update Microsoft Graph connection" if before else "Connect Microsoft Graph",
            category=CONNECTION_CATEGORY,
            operation=Op.UPDATE if before else Op.CREATE,
            resources=[
                audit.resource(
                    type="Tenant connection", id=connection.tenant_id, name=str(connection), changes=changes
                )
            ],
        )
    forget_clients()
    return connection


_clients_lock = threading.Lock()
_sources: dict[tuple[Any, ...], TokenSource] = {}


def forget_clients() -> None:
    with _clients_lock:
        _sources.clear()


def _session(connection: TenantConnection) -> requests.Session:
    session = requests.Session()
    if connection.ca_certificate:
        pem = connection.ca_certificate.strip().encode() + b"\n"
        path = Path(settings.DATA_DIR) / f"graph-ca-{hashlib.sha256(pem).hexdigest()[:16]}.pem"
        if not path.exists():
            path.write_bytes(pem)
        session.verify = str(path)
        session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify=
    return session


def token_source(connection: TenantConnection) -> TokenSource:
    """One msal client per connection version and process: its token cache serves every task the process runs."""
    key = (connection.pk, connection.updated_at, connection.credential_set_at)
    with _clients_lock:
        source = _sources.get(key)
        if source is None:
            _sources.clear()
            source = TokenSource(
                tenant_id=connection.tenant_id,
                client_id=connection.client_id,
                credential=_credential(connection),
                cloud=CLOUDS[connection.cloud],
                authority_host=connection.authority_url or None,
                session=_session(connection),
            )
            _sources[key] = source
        return source


def _credential(connection: TenantConnection) -> str | dict[str, str]:
    stored = unseal(connection.credential_encrypted)
    if connection.credential_kind == TenantConnection.Credential.SECRET:
        return str(stored["secret"])
    return {"private_key": stored["private_key"], "thumbprint": stored["thumbprint"]}


def client_for(connection: TenantConnection, *, budget: WriteBudget | None = None) -> GraphClient:
    source = token_source(connection)
    return GraphClient(
        graph_url=connection.graph_url or CLOUDS[connection.cloud].graph_url,
        tokens=source.token,
        forget_token=source.forget,
        session=source.session,
        write_slot=budget.slot if budget else None,
        on_throttle=budget.pause if budget else None,
        max_attempts=int(getattr(settings, "GRAPH_MAX_ATTEMPTS", 6)),
        backoff_cap=float(getattr(settings, "GRAPH_BACKOFF_CAP_SECONDS", 60.0)),
    )


def connected_client() -> GraphClient:
    connection = TenantConnection.current()
    if connection is None:
        raise NotConnected(
            "Connect the portal to Microsoft Graph first (Tenant administration > Microsoft Intune)."
        )
    return client_for(
        connection,
        budget=WriteBudget.shared(limit=connection.write_limit, window=connection.write_window_seconds),
    )


def test_connection(actor: audit.Actor) -> TenantConnection:
    """Sign in and read one page of users and of imported certificates; keep the outcome on the connection."""
    connection = TenantConnection.current()
    if connection is None:
        raise NotConnected("No connection to test.")
    result: dict[str, Any]
    try:
        client = client_for(connection)
        users = client.get_json("/v1.0/users?$top=1&$select=id,userPrincipalName")
        certificates = client.get_json("/beta/deviceManagement/userPfxCertificates?$top=1")
        result = {
            "users": len(users.get("value", [])),
            "certificates": len(certificates.get("value", [])),
            "more": bool(certificates.get("@odata.nextLink")),
        }
        ok = True
    except GraphError as exc:
        result, ok = {"error": exc.to_json(), "summary": exc.summary()}, False
    except (ValueError, KeyError) as exc:
        result, ok = {"summary": f"The stored credential cannot be used: {exc}"}, False
    with transaction.atomic():
        TenantConnection.objects.filter(pk=connection.pk).update(
            tested_at=timezone.now(), test_ok=ok, test_result=result
        )
        audit.record(
            actor,
            activity="Test Microsoft Graph connection",
            category=CONNECTION_CATEGORY,
            operation=Op.ACTION,
            result=AuditEvent.Result.SUCCESS if ok else AuditEvent.Result.FAILURE,
            resources=[
                audit.resource(type="Tenant connection", id=connection.tenant_id, name=str(connection))
            ],
        )
    connection.refresh_from_db()
    return connection


# --- Certificates in Intune ------------------------------------------------------------------

COMPARED_FIELDS = (
    "thumbprint",
    "intendedPurpose",
    "userPrincipalName",
    "providerName",
    "keyName",
    "paddingScheme",
    "startDateTime",
    "expirationDateTime",
)


def graph_id(certificate: Certificate) -> str:
    return GraphClient.pfx_id(certificate.user.object_id, certificate.thumbprint)


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def certificate_body(certificate: Certificate) -> dict[str, Any]:
    key = certificate.encryption_key
    return {
        "@odata.type": "#microsoft.graph.userPFXCertificate",
        "thumbprint": certificate.thumbprint.lower(),
        "intendedPurpose": certificate.purpose,
        "userPrincipalName": certificate.user.upn,
        "startDateTime": _utc(certificate.not_before),
        "expirationDateTime": _utc(certificate.not_after),
        "providerName": key.provider_name,
        "keyName": key.key_name,
        "paddingScheme": certificate.padding,
        "encryptedPfxBlob": base64.b64encode(bytes(certificate.pfx_blob)).decode(),
        "encryptedPfxPassword": base64.b64encode(bytes(certificate.encrypted_password)).decode(),
    }


def _same(name: str, ours: Any, theirs: Any) -> bool:
    if name.endswith("DateTime"):
        try:
            return dt.datetime.fromisoformat(str(ours).replace("Z", "+00:00")) == dt.datetime.fromisoformat(
                str(theirs).replace("Z", "+00:00")
            )
        except ValueError:
            return False
    # Enum names and UPNs compare without case (the service accepts either casing).
    return str(ours or "").lower() == str(theirs or "").lower()


def differences(certificate: Certificate, record: dict[str, Any]) -> list[dict[str, Any]]:
    body = certificate_body(certificate)
    return [
        {"field": name, "portal": body[name], "intune": record.get(name)}
        for name in COMPARED_FIELDS
        if not _same(name, body[name], record.get(name))
    ]


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

    Raises ``UserNotInEntra`` for a user Intune does not know (see ``held_for_unknown_users``).
    """
    from graph import tasks

    if not certificate.user.in_entra:
        raise UserNotInEntra(f"{certificate.user.upn}: {HELD_MESSAGE}")
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
        raise NotConnected("Connect the tenant first.")
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
        problems = _read_back_problems(certificate, existing)
        if problems:
            raise GraphError(
                "Read-back does not match: " + "; ".join(problems), status=400, body=str(existing)
            )
    except NotConnected as exc:
        _fail(record, certificate, token, {"summary": str(exc)})
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
        )
        Certificate.objects.filter(pk=certificate.pk).update(
            graph_state=GraphState.SYNCED, graph_error="", graph_synced_at=now
        )
        audit.record(
            audit.Actor.system("Intune upload"),
            activity="Upload certificate to Intune",
            category=CERTIFICATE_CATEGORY,
            operation=Op.CREATE,
            resources=[
                audit.resource(
                    certificate,
                    type="Certificate",
                    id=str(certificate.code),
                    name=str(certificate),
                    changes=[{"field": "graph id", "old": None, "new": record.graph_id}],
                )
            ],
        )
    return "synced"


def _read_back_problems(certificate: Certificate, record: dict[str, Any]) -> list[str]:
    problems = [
        f"{d['field']} is {d['intune']!r}, expected {d['portal']!r}" for d in differences(certificate, record)
    ]
    # Secrets are write-only: Graph returns one zero byte and an empty string, never what we sent.
    if record.get("encryptedPfxBlob") not in (REDACTED_BLOB, "", None):
        problems.append("encryptedPfxBlob came back unredacted")
    if record.get("encryptedPfxPassword") not in ("", None):
        problems.append("encryptedPfxPassword came back unredacted")
    return problems


def _fail(record: UploadRecord, certificate: Certificate, token: uuid.UUID, error: dict[str, Any]) -> None:
    with transaction.atomic():
        _release(record.pk, token, state=UploadRecord.State.FAILED, attempts=record.attempts + 1, error=error)
        Certificate.objects.filter(pk=certificate.pk).update(
            graph_state=GraphState.FAILED, graph_error=str(error.get("summary", ""))[:500]
        )
        audit.record(
            audit.Actor.system("Intune upload"),
            activity="Upload certificate to Intune",
            category=CERTIFICATE_CATEGORY,
            operation=Op.CREATE,
            result=AuditEvent.Result.FAILURE,
            resources=[
                audit.resource(
                    certificate,
                    type="Certificate",
                    id=str(certificate.code),
                    name=str(certificate),
                    changes=[{"field": "error", "old": None, "new": error.get("summary", "")}],
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
    except (GraphError, NotConnected) as exc:
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
    claim_timeout = float(
        getattr(
            settings, "GRAPH_CLAIM_TIMEOUT_SECONDS", getattr(settings, "CELERY_TASK_TIME_LIMIT", 360) + 60
        )
    )
    requeue_after = float(getattr(settings, "GRAPH_REQUEUE_AFTER_SECONDS", 900))
    claimed_before = claimed_before or now - dt.timedelta(seconds=claim_timeout)
    queued_before = queued_before or now - dt.timedelta(seconds=requeue_after)
    active = (UploadRecord.State.QUEUED, UploadRecord.State.DELETING)
    stalled = UploadRecord.objects.filter(state__in=active).filter(
        Q(claim__isnull=False, claimed_at__lt=claimed_before)
        | Q(claim__isnull=True, queued_at__lt=queued_before)
    )
    # A run whose worker died would show "Running" for ever.
    gone = {"summary": "The worker stopped before this run finished."}
    for model in (ReconcileRun, SyncRun):
        model.objects.filter(state=model.State.RUNNING, started_at__lt=claimed_before).update(
            state=model.State.FAILED, finished_at=now, error=gone
        )
    count = 0
    for record in stalled.only("pk", "state"):
        released = (
            UploadRecord.objects.filter(pk=record.pk, state=record.state)
            .filter(Q(claim__isnull=True) | Q(claimed_at__lt=claimed_before))
            .update(claim=None, claimed_at=None, queued_at=now)
        )
        if released:
            count += 1
            task = (
                tasks.upload_certificate
                if record.state == UploadRecord.State.QUEUED
                else tasks.delete_from_intune
            )
            task.delay(record.pk)
    return count

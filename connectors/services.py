"""Connector writes: enrolment, trust changes, keys, health records and re-wrap work.

Each function that changes state is atomic and writes its audit row inside the
same transaction. Connector-made changes are audited with ``Actor.connector``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from certs.models import Certificate, EncryptionKey
from connectors import keys
from connectors.agent import possession
from connectors.models import (
    FEATURES,
    Connector,
    ConnectorEvent,
    ConnectorJob,
    ConnectorKey,
    EnrollmentToken,
    Heartbeat,
    KeyRotation,
    Status,
    StatusChange,
    claim_timeout,
    hash_secret,
    heartbeat_interval,
)
from portal import access, audit
from portal.audit import Actor
from portal.models import ScopeTag, User

log = logging.getLogger(__name__)

CATEGORY = "Connectors"
TOKEN_PREFIX = "pfxe_"
CREDENTIAL_PREFIX = "pfxc_"
DEFAULT_TOKEN_TTL = timedelta(hours=24)
MAX_CLAIM = 50
HEARTBEAT_HISTORY = timedelta(days=7)


class ConnectorError(Exception):
    """A refusal with a stable code the API returns as is."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _actor_for(connector: Connector, ip: str | None = None) -> Actor:
    return Actor.connector(connector.name, ip)


def _event(connector: Connector, event_id: int, message: str, level: str = "info") -> None:
    ConnectorEvent.objects.create(connector=connector, event_id=event_id, level=level, message=message[:500])


# --- Enrolment -------------------------------------------------------------------


@transaction.atomic
def token_create(
    actor: Actor, *, name: str, tags: Iterable[ScopeTag] = (), ttl: timedelta = DEFAULT_TOKEN_TTL
) -> tuple[EnrollmentToken, str]:
    """A one-time enrolment token. The secret is returned here once and never stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = EnrollmentToken(
        token_hash=hash_secret(secret),
        hint=secret[: len(TOKEN_PREFIX) + 4],
        name=name.strip()[:100],
        created_by=actor.user,
        created_by_name=actor.name,
        expires_at=timezone.now() + ttl,
    )
    token.full_clean()
    token.save()
    token.scope_tags.set(list(tags) or [ScopeTag.default()])
    audit.record(
        actor,
        activity="Create connector enrollment token",
        category=CATEGORY,
        operation="create",
        resources=[audit.resource(token, type="Enrollment token", name=f"{token.hint}… for {token.name}")],
    )
    return token, secret


@transaction.atomic
def token_cancel(actor: Actor, token: EnrollmentToken) -> None:
    """Withdraw an unused enrolment token (say, it was pasted somewhere it should not be)."""
    if token.used_at is not None:
        raise ConnectorError("token_used", "This token has already enrolled a connector.", 409)
    resource = audit.resource(token, type="Enrollment token", name=f"{token.hint}… for {token.name}")
    token.delete()
    audit.record(
        actor,
        activity="Cancel connector enrollment token",
        category=CATEGORY,
        operation="delete",
        resources=[resource],
    )


@transaction.atomic
def connector_enroll(
    *,
    token: str,
    host_name: str,
    version: str,
    features: Sequence[str],
    name: str = "",
    ip: str | None = None,
) -> tuple[Connector, str]:
    """Trade a one-time token for a connector and its credential; the token cannot be used again."""
    now = timezone.now()
    row = EnrollmentToken.objects.select_for_update().filter(token_hash=hash_secret(token)).first()
    if row is None:
        raise ConnectorError("invalid_token", "The enrollment token is not known.", 401)
    if row.used_at is not None:
        raise ConnectorError("token_used", "The enrollment token has already been used.", 401)
    if row.expires_at <= now:
        raise ConnectorError("token_expired", "The enrollment token has expired.", 401)
    # Conditional update: of two agents racing with one token, exactly one wins.
    if not EnrollmentToken.objects.filter(pk=row.pk, used_at=None).update(used_at=now):
        raise ConnectorError("token_used", "The enrollment token has already been used.", 401)
    credential = CREDENTIAL_PREFIX + secrets.token_urlsafe(32)
    connector = Connector(
        name=(name.strip() or row.name or host_name or "Connector")[:100],
        host_name=host_name[:255],
        version=version[:50],
        features=[f for f in features if f in FEATURES],
        credential_hash=hash_secret(credential),
        enrolled_at=now,
        enrolled_ip=ip,
    )
    connector.full_clean()
    connector.save()
    connector.scope_tags.set(list(row.scope_tags.all()) or [ScopeTag.default()])
    EnrollmentToken.objects.filter(pk=row.pk).update(connector=connector)
    _event(connector, ConnectorEvent.ENROLLED, f"Enrolled from {host_name or 'an unnamed machine'}.")
    audit.record(
        _actor_for(connector, ip),
        activity="Enroll connector",
        category=CATEGORY,
        operation="create",
        resources=[
            audit.resource(connector, type="Certificate connector"),
            audit.resource(row, type="Enrollment token", name=f"{row.hint}…"),
        ],
    )
    return connector, credential


def connector_authenticate(credential: str) -> Connector:
    """The connector owning this credential; revoked and disabled ones are refused at once."""
    if not credential.startswith(CREDENTIAL_PREFIX):
        raise ConnectorError(
            "invalid_credential", "Send 'Authorization: Bearer <connector credential>'.", 401
        )
    connector = Connector.objects.filter(credential_hash=hash_secret(credential)).first()
    if connector is None:
        raise ConnectorError("invalid_credential", "The connector credential is not valid.", 401)
    if connector.state == Connector.State.DISABLED:
        raise ConnectorError("connector_disabled", "An administrator disabled this connector.", 403)
    if connector.state != Connector.State.ACTIVE:
        raise ConnectorError("connector_revoked", "This connector has been revoked.", 401)
    return connector


# --- Administration ----------------------------------------------------------------


def _change(
    actor: Actor, connector: Connector, *, activity: str, fields: dict[str, Any], operation: str = "update"
) -> None:
    before = audit.snapshot(connector, list(fields))
    for name, value in fields.items():
        setattr(connector, name, value)
    connector.full_clean()
    connector.save(update_fields=list(fields))
    audit.record(
        actor,
        activity=activity,
        category=CATEGORY,
        operation=operation,
        resources=[
            audit.resource(
                connector,
                type="Certificate connector",
                changes=audit.changes(before, audit.snapshot(connector, list(fields))),
            )
        ],
    )


@transaction.atomic
def connector_rename(actor: Actor, connector: Connector, *, name: str) -> None:
    _change(actor, connector, activity="Rename connector", fields={"name": name.strip()[:100]})


@transaction.atomic
def connector_disable(actor: Actor, connector: Connector) -> None:
    if connector.state == Connector.State.REVOKED:
        raise ConnectorError("connector_revoked", "A revoked connector cannot be disabled or enabled.")
    _change(actor, connector, activity="Disable connector", fields={"state": Connector.State.DISABLED})
    _record_status(connector, timezone.now())


@transaction.atomic
def connector_enable(actor: Actor, connector: Connector) -> None:
    if connector.state == Connector.State.REVOKED:
        raise ConnectorError("connector_revoked", "A revoked connector cannot be disabled or enabled.")
    _change(actor, connector, activity="Enable connector", fields={"state": Connector.State.ACTIVE})
    _record_status(connector, timezone.now())


@transaction.atomic
def connector_revoke(actor: Actor, connector: Connector) -> None:
    """Permanent: the credential hash is dropped, so the agent's next request is refused."""
    _change(
        actor,
        connector,
        activity="Revoke connector",
        fields={"state": Connector.State.REVOKED, "credential_hash": None},
    )
    _release_claims(connector)
    _record_status(connector, timezone.now())


@transaction.atomic
def connector_delete(actor: Actor, connector: Connector) -> None:
    _release_claims(connector)
    audit.record(
        actor,
        activity="Delete connector",
        category=CATEGORY,
        operation="delete",
        resources=[audit.resource(connector, type="Certificate connector")],
    )
    connector.delete()


def _release_claims(connector: Connector) -> None:
    ConnectorJob.objects.filter(claimed_by=connector, state=ConnectorJob.State.CLAIMED).update(
        state=ConnectorJob.State.QUEUED, claimed_by=None, claimed_at=None
    )


# --- Heartbeats and health -----------------------------------------------------------


@dataclass(frozen=True)
class HeartbeatReport:
    version: str
    host_name: str
    features: list[str] | None  # None: unchanged
    self_tests: list[dict[str, Any]]
    pending_work: int
    sent_at: datetime | None


@transaction.atomic
def heartbeat_record(connector: Connector, report: HeartbeatReport, *, ip: str | None = None) -> Heartbeat:
    now = timezone.now()
    skew = (report.sent_at - now).total_seconds() if report.sent_at else None
    beat = Heartbeat.objects.create(
        connector=connector,
        received_at=now,
        version=report.version[:50],
        host_name=report.host_name[:255],
        self_tests=report.self_tests,
        clock_skew_seconds=skew,
        pending_work=report.pending_work,
    )
    Connector.objects.filter(pk=connector.pk).update(
        last_seen=now,
        last_ip=ip,
        version=report.version[:50] or F("version"),
        host_name=report.host_name[:255] or F("host_name"),
        features=F("features") if report.features is None else [f for f in report.features if f in FEATURES],
        last_self_tests=report.self_tests,
        clock_skew_seconds=skew,
    )
    connector.refresh_from_db()
    _record_status(connector, now)
    return beat


def _record_status(connector: Connector, now: datetime) -> StatusChange | None:
    """Store a row when the computed status differs from the recorded one (once, even if raced)."""
    new = connector.status(now)
    old = connector.recorded_status
    if new == old:
        return None
    if not Connector.objects.filter(pk=connector.pk, recorded_status=old).update(recorded_status=new):
        return None
    connector.recorded_status = new
    return StatusChange.objects.create(
        connector=connector, old_status=old, new_status=new, reason=connector.status_reason(now)[:300]
    )


def health_sweep(now: datetime | None = None) -> list[StatusChange]:
    """Compare every connector's computed status with the recorded one; store the changes."""
    now = now or timezone.now()
    changes = []
    for connector in Connector.objects.exclude(state=Connector.State.REVOKED, recorded_status=Status.REVOKED):
        with transaction.atomic():
            change = _record_status(connector, now)
        if change is not None:
            changes.append(change)
    Heartbeat.objects.filter(received_at__lt=now - HEARTBEAT_HISTORY).delete()
    _fail_exhausted_jobs(now)
    return changes


def _alert_recipients() -> list[str]:
    configured = list(getattr(settings, "CONNECTOR_ALERT_EMAILS", []))
    if configured:
        return configured
    admins = User.objects.filter(is_active=True)
    return [u.email for u in admins if access.has_perm(u, "connectors.update")]


def alerts_send(now: datetime | None = None) -> int:
    """Send one e-mail (and webhook call) per status change worth an alert; each row is claimed once."""
    now = now or timezone.now()
    pending = StatusChange.objects.filter(alert_claimed_at=None).filter(
        Q(new_status__in=[Status.WARNING, Status.ERROR]) | Q(old_status__in=[Status.WARNING, Status.ERROR])
    )
    sent = 0
    for change_id in list(pending.values_list("pk", flat=True)[:100]):
        if not StatusChange.objects.filter(pk=change_id, alert_claimed_at=None).update(alert_claimed_at=now):
            continue  # another worker took it
        change = StatusChange.objects.select_related("connector").get(pk=change_id)
        result = _deliver_alert(change)
        StatusChange.objects.filter(pk=change_id).update(alerted_at=timezone.now(), alert_result=result[:300])
        sent += 1
    return sent


def _deliver_alert(change: StatusChange) -> str:
    connector = change.connector
    subject = f"Connector {connector.name} is {change.get_new_status_display().lower()}"
    body = (
        f"Certificate connector {connector.name} ({connector.host_name or 'unknown machine'}) changed from "
        f"{change.get_old_status_display()} to {change.get_new_status_display()} at "
        f"{change.changed_at:%Y-%m-%d %H:%M:%S %Z}.\n\n{change.reason}\n\n"
        f"{settings.SITE_URL}/connectors/{connector.code}/\n"
    )
    parts = []
    recipients = _alert_recipients()
    if recipients:
        try:
            send_mail(settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + subject, body, None, recipients)
            parts.append(f"mailed {len(recipients)}")
        except Exception as exc:
            parts.append(f"mail failed: {exc}")
    webhook = str(getattr(settings, "CONNECTOR_ALERT_WEBHOOK", ""))
    if webhook:
        payload = {
            "connector": str(connector.code),
            "name": connector.name,
            "old_status": change.old_status,
            "new_status": change.new_status,
            "reason": change.reason,
            "changed_at": change.changed_at.isoformat(),
        }
        request = urllib.request.Request(
            webhook, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                parts.append(f"webhook {response.status}")
        except Exception as exc:
            parts.append(f"webhook failed: {exc}")
    return "; ".join(parts) or "no recipients"


# --- Keys --------------------------------------------------------------------------------


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
        raise ConnectorError("bad_key_name", "Both provider_name and key_name are required.")
    try:
        parsed = keys.parse_public_key(public_key_pem)
    except keys.ProblemError as exc:
        raise ConnectorError("bad_public_key", str(exc)) from exc
    if not possession.holds(parsed.pem, proof, str(connector.code), provider_name, key_name):
        raise ConnectorError(
            "no_proof_of_possession",
            "The proof does not verify with this public key: the connector must sign the key statement "
            "with the matching private key.",
        )
    actor = _actor_for(connector, ip)
    try:
        encryption_key = keys.encryption_key_for(
            actor,
            provider_name=provider_name,
            key_name=key_name,
            key=parsed,
            tags=connector.scope_tags.all(),
        )
    except keys.KeyConflict as exc:
        raise ConnectorError("key_name_conflict", str(exc), 409) from exc
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
        _event(
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


NOT_PROVEN_MESSAGE = (
    "Passwords are re-wrapped only to a key a connector of this portal has proven it holds. "
    "{key} was added by hand (for example exported from Microsoft's connector for Intune): it can "
    "encrypt new imports, but nothing shows that its private key is held by a connector rather than "
    "by whoever added it. Start the connector that holds it so that it publishes the key."
)


def refuse_unproven_target(key: EncryptionKey) -> None:
    """Raise ``key_not_proven`` unless a connector has proven it holds ``key``'s private key."""
    if key.possession_proven_at is None:
        raise ConnectorError("key_not_proven", NOT_PROVEN_MESSAGE.format(key=key), 409)


# --- Key rotation and connector jobs ------------------------------------------------------


@transaction.atomic
def rotation_start(actor: Actor, *, from_key: EncryptionKey, to_key: EncryptionKey) -> KeyRotation:
    """Queue a re-wrap job for every certificate whose password is encrypted to ``from_key``."""
    if from_key.pk == to_key.pk:
        raise ConnectorError("same_key", "Choose a different key to rotate to.")
    refuse_unproven_target(to_key)
    if KeyRotation.objects.filter(
        from_fingerprint=from_key.fingerprint, state=KeyRotation.State.RUNNING
    ).exists():
        raise ConnectorError("rotation_running", "A rotation from this key is already running.", 409)
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


def _claimable(now: datetime) -> Q:
    stale = now - claim_timeout()
    return Q(state=ConnectorJob.State.QUEUED) | Q(
        state=ConnectorJob.State.CLAIMED, claimed_at__lt=stale, attempts__lt=ConnectorJob.MAX_ATTEMPTS
    )


def jobs_claim(connector: Connector, *, limit: int = 10) -> list[dict[str, Any]]:
    """Claim up to ``limit`` jobs this connector can do (it holds the key); each job goes to one connector."""
    now = timezone.now()
    if not connector.self_tests_ok or "rewrap" not in connector.features:
        return []
    held = list(connector.keys.values_list("fingerprint", flat=True))
    candidates = ConnectorJob.objects.filter(
        _claimable(now), kind=ConnectorJob.Kind.REWRAP, from_fingerprint__in=held
    )
    _fail_unproven_targets(connector, candidates, now)
    candidates = candidates.filter(to_fingerprint__in=_proven_fingerprints())
    claimed: list[int] = []
    for pk in candidates.values_list("pk", flat=True)[: max(1, min(limit, MAX_CLAIM)) * 2]:
        won = ConnectorJob.objects.filter(_claimable(now), pk=pk).update(
            state=ConnectorJob.State.CLAIMED, claimed_by=connector, claimed_at=now, attempts=F("attempts") + 1
        )
        if won:
            claimed.append(pk)
        if len(claimed) >= limit:
            break
    return [_job_payload(job) for job in ConnectorJob.objects.filter(pk__in=claimed)]


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
            .filter(code=result.job, claimed_by=connector, state=ConnectorJob.State.CLAIMED)
            .first()
        )
        if job is None:
            outcome[result.job] = "not_claimed"
            continue
        if job.rotation_id:
            rotations.add(job.rotation_id)
        outcome[result.job] = _apply(connector, job, result, now, changed)
    if changed:
        audit.record(
            _actor_for(connector, ip),
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
        _event(connector, event_id, f"Re-wrap of certificate {job.certificate_id} failed: {error}", "error")
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
        _event(
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
            _actor_for(connector, ip),
            activity="Finish key rotation",
            category=CATEGORY,
            operation="action",
            result="failure" if failed else "success",
            resources=[audit.resource(rotation, type="Key rotation", name=str(rotation))],
        )


def _fail_exhausted_jobs(now: datetime) -> None:
    """Stale claims that used up their attempts fail, so a rotation can finish."""
    stale = now - claim_timeout()
    exhausted = ConnectorJob.objects.filter(
        state=ConnectorJob.State.CLAIMED, claimed_at__lt=stale, attempts__gte=ConnectorJob.MAX_ATTEMPTS
    )
    for job in exhausted.select_related("claimed_by"):
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
    return ConnectorJob.objects.filter(_claimable(timezone.now()), from_fingerprint__in=held).count()


def next_heartbeat_in() -> int:
    return heartbeat_interval()

"""Connector health: heartbeats, status changes, and what the pages show of them.

Writes: ``heartbeat_record`` stores each check-in, ``record_status`` stores a row
when a connector's computed status changes, and ``health_sweep`` (every 30 s)
catches the changes no request triggers. Alerts on those rows are in
``connectors.alerts``.

Reads: ``summary_for(user)`` feeds the Home tile; ``key_holders(keys)`` feeds the
encryption-keys page (``templates/connectors/_key_holders.html``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from certs.models import Certificate, EncryptionKey
from connectors import reencrypt, rotation
from connectors.models import FEATURES, Connector, ConnectorKey, Heartbeat, Status, StatusChange
from portal import access
from portal.access import AnyUser

HEARTBEAT_HISTORY = timedelta(days=7)


def summary_for(user: AnyUser) -> dict[str, int] | None:
    """Counts per status of the connectors the admin may read; ``None`` without the permission."""
    if not access.has_perm(user, "connectors.read"):
        return None
    now = timezone.now()
    counts = Counter(c.status(now) for c in access.scoped(Connector.objects.all(), user))
    return {status: counts.get(status, 0) for status in Status.values} | {"total": sum(counts.values())}


@dataclass
class KeyHolding:
    key: EncryptionKey
    holders: list[Connector] = field(default_factory=list)
    healthy_holders: int = 0
    certificates: int = 0
    warnings: list[str] = field(default_factory=list)


def key_holders(keys: Iterable[EncryptionKey]) -> list[KeyHolding]:
    """Each key with the connectors holding it, and the warnings an admin must see."""
    keys = list(keys)
    now = timezone.now()
    active = list(Connector.objects.filter(state=Connector.State.ACTIVE).prefetch_related("keys"))
    by_fingerprint: dict[str, list[Connector]] = {}
    for held in ConnectorKey.objects.filter(connector__in=active).select_related("connector"):
        by_fingerprint.setdefault(held.fingerprint, []).append(held.connector)
    used = Counter(
        dict(
            Certificate.objects.filter(encryption_key__in=keys)
            .values_list("encryption_key_id")
            .annotate(n=Count("id"))
            .values_list("encryption_key_id", "n")
        )
    )
    rows = []
    for key in keys:
        holders = by_fingerprint.get(key.fingerprint, [])
        row = KeyHolding(key=key, holders=holders, certificates=used.get(key.pk, 0))
        row.healthy_holders = sum(1 for c in holders if c.status(now) == Status.HEALTHY)
        if row.certificates and not row.healthy_holders:
            row.warnings.append(
                f"{row.certificates} certificate(s) use this key, but no healthy connector holds it: "
                "Intune cannot deliver them."
            )
        missing = [c.name for c in active if c not in holders]
        if row.certificates and holders and missing:
            row.warnings.append(
                "Active connectors disagree: " + ", ".join(missing) + " do(es) not hold this key, "
                "and Intune may hand any request to any connector."
            )
        rows.append(row)
    return rows


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
    record_status(connector, now)
    return beat


def record_status(connector: Connector, now: datetime) -> StatusChange | None:
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
            change = record_status(connector, now)
        if change is not None:
            changes.append(change)
    Heartbeat.objects.filter(received_at__lt=now - HEARTBEAT_HISTORY).delete()
    rotation.fail_exhausted_jobs(now)
    reencrypt.fail_exhausted_jobs(now)
    return changes

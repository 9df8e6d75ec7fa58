"""Certificate connectors Intune knows: read from Graph (certificateConnectorDetails, and the older
ndesConnectors), kept with the health the portal's own agents get (version support window, age of
the last check-in), and an alert when that health goes down or comes back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from connectors.alerts import deliver
from connectors.models import Status
from graph import intune_calls as calls
from graph.client import GraphClient
from graph.connection import connected_client
from graph.models import IntuneConnector, TenantConnection

Kind = IntuneConnector.Kind
ALERTED = frozenset({Status.WARNING, Status.ERROR})


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int("".join(c for c in p if c.isdigit()) or 0) for p in version.split("."))


def _when(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def health(connector: IntuneConnector, now: dt.datetime) -> tuple[str, str]:
    """The status and its reason, by the same rules as the portal's agents, with Intune's timings."""
    if not connector.listed:
        return Status.DISABLED, "No longer listed by Intune."
    if connector.kind == Kind.NDES and connector.intune_state == "inactive":
        return Status.ERROR, "Intune reports this NDES connector inactive."
    if connector.last_check_in is None:
        return Status.UNKNOWN, "Intune has no check-in for it."
    age = int((now - connector.last_check_in).total_seconds())
    if age > settings.INTUNE_CONNECTOR_DOWN_AFTER_SECONDS:
        return Status.ERROR, f"No check-in for {age // 3600} h."
    if age > settings.INTUNE_CONNECTOR_LATE_AFTER_SECONDS:
        return Status.WARNING, f"Check-in late ({age // 60} min ago)."
    minimum = settings.INTUNE_CONNECTOR_MIN_VERSION
    if minimum and connector.version and _version_tuple(connector.version) < _version_tuple(minimum):
        return Status.WARNING, f"Version {connector.version} is older than the support window ({minimum})."
    return Status.HEALTHY, "Checking in on time."


def _rows(client: GraphClient) -> list[IntuneConnector]:
    rows = [
        IntuneConnector(
            kind=Kind.CERTIFICATE,
            graph_id=str(item.get("id", "")),
            name=str(item.get("connectorName") or ""),
            machine=str(item.get("machineName") or ""),
            version=str(item.get("connectorVersion") or ""),
            last_check_in=_when(item.get("lastCheckinDateTime")),
            enrolled_at=_when(item.get("enrollmentDateTime")),
        )
        for item in calls.certificate_connectors(client)
    ]
    rows += [
        IntuneConnector(
            kind=Kind.NDES,
            graph_id=str(item.get("id", "")),
            name=str(item.get("displayName") or ""),
            machine=str(item.get("machineName") or ""),
            version=str(item.get("connectorVersion") or ""),
            last_check_in=_when(item.get("lastConnectionDateTime")),
            enrolled_at=_when(item.get("enrolledDateTime")),
            intune_state=str(item.get("state") or ""),
        )
        for item in calls.ndes_connectors(client)
    ]
    return rows


def refresh(*, client: GraphClient | None = None, now: dt.datetime | None = None) -> int:
    """Read Intune's connectors, store them with their health, alert on changes; returns how many are listed."""
    if client is None and TenantConnection.current() is None:
        return 0
    rows = _rows(client or connected_client())
    now = now or timezone.now()
    changes: list[tuple[IntuneConnector, str]] = []
    with transaction.atomic():
        known = {(c.kind, c.graph_id): c for c in IntuneConnector.objects.select_for_update()}
        seen = set()
        for row in rows:
            current = known.get((row.kind, row.graph_id))
            if current is not None:
                row.pk = current.pk
            seen.add((row.kind, row.graph_id))
            row.listed, row.read_at = True, now
            row.status, row.status_reason = health(row, now)
            row.save()
            old = current.status if current else Status.UNKNOWN
            if old != row.status and (row.status in ALERTED or old in ALERTED):
                changes.append((row, str(old)))
        for key, gone in known.items():
            if key not in seen and gone.listed:
                gone.listed = False
                gone.status, gone.status_reason = health(gone, now)
                gone.save(update_fields=["listed", "status", "status_reason"])
    for row, old in changes:
        _alert(row, old)
    return len(rows)


def _alert(connector: IntuneConnector, old: str) -> str:
    subject = (
        f"Intune connector {connector.name or connector.machine} is {Status(connector.status).label.lower()}"
    )
    body = (
        f"{connector.get_kind_display()} {connector.name} on {connector.machine or 'an unknown machine'} changed "
        f"from {Status(old).label} to {Status(connector.status).label}.\n\n{connector.status_reason}\n\n"
        f"{settings.SITE_URL}/connectors/\n"
    )
    payload = {
        "intune_connector": connector.graph_id,
        "kind": connector.kind,
        "name": connector.name,
        "old_status": old,
        "new_status": connector.status,
        "reason": connector.status_reason,
    }
    return deliver(subject, body, payload)

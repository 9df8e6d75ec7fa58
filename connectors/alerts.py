"""Alerts on connector status changes: one e-mail (and webhook call) per change worth it.

The health sweep stores the changes (``connectors.health``); ``alerts_send`` runs
right after it and claims each row once, so two workers never alert twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q

from connectors.models import Status, StatusChange
from portal.lib import alerts


def alerts_send(now: datetime | None = None) -> int:
    """Send one e-mail (and webhook call) per status change worth an alert; each row is claimed once."""
    # Going down, or coming back after being down, is worth a message; first check-ins are not.
    pending = StatusChange.objects.select_related("connector").filter(
        Q(new_status__in=[Status.WARNING, Status.ERROR]) | Q(old_status__in=[Status.WARNING, Status.ERROR])
    )
    return alerts.send_claimed(pending, _deliver_alert, now)


def _deliver_alert(change: StatusChange) -> str:
    connector = change.connector
    subject = f"Connector {connector.name} is {change.get_new_status_display().lower()}"
    body = (
        f"Certificate connector {connector.name} ({connector.host_name or 'unknown machine'}) changed from "
        f"{change.get_old_status_display()} to {change.get_new_status_display()} at "
        f"{change.changed_at:%Y-%m-%d %H:%M:%S %Z}.\n\n{change.reason}\n\n"
        f"{settings.SITE_URL}/connectors/{connector.code}/\n"
    )
    payload = {
        "connector": str(connector.code),
        "name": connector.name,
        "old_status": change.old_status,
        "new_status": change.new_status,
        "reason": change.reason,
        "changed_at": change.changed_at.isoformat(),
    }
    return deliver(subject, body, payload)


def deliver(subject: str, body: str, payload: dict[str, Any]) -> str:
    """Send one connector alert by e-mail and to the webhook (both as configured); what happened, in a line."""
    return alerts.deliver(subject, body, payload, permission="connectors.update")

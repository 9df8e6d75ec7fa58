"""Alerts on connector status changes: one e-mail (and webhook call) per change worth it.

The health sweep stores the changes (``connectors.health``); ``alerts_send`` runs
right after it and claims each row once, so two workers never alert twice.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q
from django.utils import timezone

from connectors.models import Status, StatusChange
from portal import access
from portal.models import User


def _alert_recipients() -> list[str]:
    configured = list(settings.CONNECTOR_ALERT_EMAILS)
    if configured:
        return configured
    admins = User.objects.filter(is_active=True)
    return [u.email for u in admins if access.has_perm(u, "connectors.update")]


def alerts_send(now: datetime | None = None) -> int:
    """Send one e-mail (and webhook call) per status change worth an alert; each row is claimed once."""
    now = now or timezone.now()
    # Going down, or coming back after being down, is worth a message; first check-ins are not.
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
    """Send one alert by e-mail and to the webhook (both as configured); what happened, in a line."""
    parts = []
    recipients = _alert_recipients()
    if recipients:
        try:
            send_mail(settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + subject, body, None, recipients)
            parts.append(f"mailed {len(recipients)}")
        except Exception as exc:
            parts.append(f"mail failed: {exc}")
    webhook = settings.CONNECTOR_ALERT_WEBHOOK
    if webhook:
        request = urllib.request.Request(
            webhook, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                parts.append(f"webhook {response.status}")
        except Exception as exc:
            parts.append(f"webhook failed: {exc}")
    return "; ".join(parts) or "no recipients"

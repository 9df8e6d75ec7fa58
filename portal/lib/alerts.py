"""Alert delivery: one e-mail and one webhook call per alert row, each row claimed once.

An alert row has ``alert_claimed_at``, ``alerted_at`` and ``alert_result``. The sender claims a
row with a conditional UPDATE before sending, so two workers never alert twice. A claim is a lease:
a row claimed by a worker that died before it recorded the alert as sent is claimed again by the
next sweep after ``PORTAL_ALERT_CLAIM_TIMEOUT_SECONDS`` (5 minutes, longer than any alert task may
run), so no alert is lost. Only a worker killed between sending and recording can make an alert go
out twice; nothing can be both sent and recorded at once.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from portal import access
from portal.models import User

BATCH = 100


def send_claimed[M: Model](
    rows: QuerySet[M], deliver_one: Callable[[M], str], now: datetime | None = None
) -> int:
    """Claim and deliver up to ``BATCH`` unclaimed ``rows`` (in the queryset's order); returns how many."""
    now = now or timezone.now()
    lapsed = now - timedelta(seconds=settings.PORTAL_ALERT_CLAIM_TIMEOUT_SECONDS)
    claimable = Q(alert_claimed_at=None) | Q(alerted_at=None, alert_claimed_at__lt=lapsed)
    unclaimed = rows.model._default_manager.filter(claimable)
    sent = 0
    for row_id in list(rows.filter(claimable).values_list("pk", flat=True)[:BATCH]):
        if not unclaimed.filter(pk=row_id).update(alert_claimed_at=now):
            continue  # another worker took it
        result = deliver_one(rows.get(pk=row_id))
        rows.model._default_manager.filter(pk=row_id).update(
            alerted_at=timezone.now(), alert_result=result[:300]
        )
        sent += 1
    return sent


def recipients(permission: str) -> list[str]:
    """The configured alert addresses, or else every active user holding ``permission``."""
    configured = list(settings.CONNECTOR_ALERT_EMAILS)
    if configured:
        return configured
    admins = User.objects.filter(is_active=True)
    return [u.email for u in admins if access.has_perm(u, permission)]


def deliver(subject: str, body: str, payload: dict[str, Any], *, permission: str) -> str:
    """Send one alert by e-mail and to the webhook (both as configured); what happened, in a line."""
    parts = []
    to = recipients(permission)
    if to:
        try:
            send_mail(settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + subject, body, None, to)
            parts.append(f"mailed {len(to)}")
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

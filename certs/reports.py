"""Expiry: the summary on Home and the daily reminders."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.db.models.functions import TruncMonth
from django.utils import timezone

from certs.models import Certificate, ExpiryReminder
from portal import access
from portal.access import AnyUser

logger = logging.getLogger(__name__)

WINDOWS = (7, 30, 60)
REMINDER_DAYS = (1, 7, 14, 30)
MONTHS = 12


def expiry_summary(user: AnyUser) -> dict[str, Any] | None:
    """Counts of certificates the admin may read expiring within 7, 30 and 60 days, and per month.

    Returns None when the admin may not read certificates (Home then hides the section).
    """
    if not access.has_perm(user, "certificates.read"):
        return None
    now = timezone.now()
    visible = access.scoped(Certificate.objects.all(), user, "read")
    windows = [
        {
            "days": days,
            "count": visible.filter(not_after__gt=now, not_after__lte=now + timedelta(days=days)).count(),
        }
        for days in WINDOWS
    ]
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    months = []
    cursor = start
    for _ in range(MONTHS):
        months.append(cursor)
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    rows = (
        visible.filter(not_after__gte=start, not_after__lt=cursor)
        .annotate(month=TruncMonth("not_after"))
        .values("month")
        .annotate(n=Count("pk"))
    )
    per_month = {(r["month"].year, r["month"].month): r["n"] for r in rows}
    counts = [per_month.get((m.year, m.month), 0) for m in months]
    peak = max(counts) or 1
    bars = [
        {"label": m.strftime("%b %Y"), "count": c, "height": round(100 * c / peak)}
        for m, c in zip(months, counts, strict=True)
    ]
    return {"windows": windows, "months": bars, "expired": visible.filter(not_after__lte=now).count()}


def _threshold(days_left: float) -> int | None:
    """The smallest reminder threshold the certificate is inside (a late import gets only the nearest one)."""
    for days in REMINDER_DAYS:
        if days_left <= days:
            return days
    return None


def send_expiry_reminders() -> int:
    """Record and e-mail reminders due today; each (certificate, threshold) is sent at most once."""
    now = timezone.now()
    due: list[tuple[Certificate, int]] = []
    soon = Certificate.objects.filter(
        not_after__gt=now, not_after__lte=now + timedelta(days=max(REMINDER_DAYS))
    ).order_by("not_after")
    for cert in soon.iterator():
        days = _threshold((cert.not_after - now).total_seconds() / 86400)
        if days is None:
            continue
        try:
            with transaction.atomic():
                ExpiryReminder.objects.create(certificate=cert, days=days, sent_at=now)
        except IntegrityError:
            continue  # already sent (or another run is sending it)
        due.append((cert, days))
    recipients = list(settings.PORTAL_EXPIRY_RECIPIENTS)
    if due and recipients:
        lines = [
            f"- {c.upn}: {c.get_purpose_display()} certificate {c.thumbprint} expires "
            f"{c.not_after:%Y-%m-%d %H:%M} UTC (within {d} day{'s' if d != 1 else ''})"
            for c, d in due
        ]
        body = (
            "These imported certificates expire soon. Import a newer certificate for each user "
            "before the date; keep the old encryption certificates so old mail stays readable.\n\n"
            + "\n".join(lines)
            + f"\n\n{settings.SITE_URL}/certificates/?expiring=30\n"
        )
        subject = f"{len(due)} certificate{'s' if len(due) != 1 else ''} expiring soon"
        send_mail(settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + subject, body, None, recipients)
    logger.info("expiry reminders: %d due", len(due))
    return len(due)

"""Alerts when a profile's install failures cross ``DELIVERY_ALERT_FAILED_DEVICES``, once per crossing.

The sweep counts each profile's devices in Error (one grouped query) and flips
:class:`FailureWatch` rows with conditional updates, so two sweeps at once record a crossing
once; each crossing becomes a :class:`FailureAlert` row, which the sender claims once before
mailing it (and calling the webhook), as connector alerts do.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from delivery.models import DeliveryState, FailureAlert, FailureWatch
from portal.lib import alerts
from profiles.models import DeliveryStatus


def failing_per_profile() -> dict[int, int]:
    """Devices with a certificate in Error, per profile id."""
    rows = (
        DeliveryState.objects.filter(status=DeliveryStatus.ERROR)
        .values("profile_id")
        .annotate(devices=Count("device_id", distinct=True))
        .order_by()
    )
    return {row["profile_id"]: row["devices"] for row in rows}


def failure_sweep(now: datetime | None = None) -> int:
    """Record each profile that crossed the threshold (either way) since the last sweep; returns how many."""
    threshold = settings.DELIVERY_ALERT_FAILED_DEVICES
    if threshold <= 0:
        return 0
    now = now or timezone.now()
    failing = failing_per_profile()
    watched = dict(FailureWatch.objects.values_list("profile_id", "over"))
    crossings = 0
    for profile_id in sorted(set(failing) | {pk for pk, over in watched.items() if over}):
        count = failing.get(profile_id, 0)
        over = count >= threshold
        if watched.get(profile_id, False) == over:
            continue
        with transaction.atomic():
            if profile_id not in watched:
                FailureWatch.objects.get_or_create(profile_id=profile_id)
            flipped = FailureWatch.objects.filter(profile_id=profile_id, over=not over).update(
                over=over, failing=count, changed_at=now
            )
            if flipped:  # another sweep did not record this crossing first
                FailureAlert.objects.create(
                    profile_id=profile_id, over=over, failing=count, threshold=threshold, created_at=now
                )
                crossings += 1
    return crossings


def alerts_send(now: datetime | None = None) -> int:
    """Send one e-mail (and webhook call) per crossing; each row is claimed once."""
    pending = FailureAlert.objects.select_related("profile").order_by("pk")
    return alerts.send_claimed(pending, _deliver, now)


def _deliver(alert: FailureAlert) -> str:
    profile = alert.profile
    if alert.over:
        subject = f"Profile {profile.name}: {alert.failing} devices failing to install certificates"
        summary = f"{alert.failing} devices report an install failure (threshold {alert.threshold})."
    else:
        subject = f"Profile {profile.name}: install failures back under {alert.threshold}"
        summary = f"{alert.failing} devices report an install failure now (threshold {alert.threshold})."
    body = (
        f"{summary}\n\nSince {alert.created_at:%Y-%m-%d %H:%M:%S %Z}.\n\n"
        f"{settings.SITE_URL}/profiles/{profile.code}/status/?status=error\n"
    )
    payload = {
        "event": "delivery_failures",
        "profile": str(profile.code),
        "name": profile.name,
        "over_threshold": alert.over,
        "failing_devices": alert.failing,
        "threshold": alert.threshold,
        "at": alert.created_at.isoformat(),
    }
    return alerts.deliver(subject, body, payload, permission="profiles.update")

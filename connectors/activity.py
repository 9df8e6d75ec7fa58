"""What a connector did, hour by hour: the counts on its page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from connectors.models import Connector, ConnectorEvent


@dataclass(frozen=True)
class Hour:
    start: datetime
    succeeded: int
    retried: int
    failed: int


def reencryptions_per_hour(connector: Connector, *, hours: int = 24) -> list[Hour]:
    """Re-encryption events (2050 success, 2051 retry, 2052 failure) per hour, newest first, in one
    query; hours without any are left out."""
    since = timezone.now() - timedelta(hours=hours)
    rows = (
        ConnectorEvent.objects.filter(
            connector=connector,
            occurred_at__gte=since,
            event_id__in=[
                ConnectorEvent.REENCRYPT_SUCCESS,
                ConnectorEvent.REENCRYPT_RETRY,
                ConnectorEvent.REENCRYPT_FAILURE,
            ],
        )
        .annotate(hour=TruncHour("occurred_at"))
        .values("hour")
        .annotate(
            succeeded=Count("id", filter=Q(event_id=ConnectorEvent.REENCRYPT_SUCCESS)),
            retried=Count("id", filter=Q(event_id=ConnectorEvent.REENCRYPT_RETRY)),
            failed=Count("id", filter=Q(event_id=ConnectorEvent.REENCRYPT_FAILURE)),
        )
        .order_by("-hour")
    )
    return [Hour(r["hour"], r["succeeded"], r["retried"], r["failed"]) for r in rows]

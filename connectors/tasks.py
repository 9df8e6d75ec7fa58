from __future__ import annotations

from celery import shared_task

from connectors import alerts, health


# Below PORTAL_ALERT_CLAIM_TIMEOUT_SECONDS: an alert claimed by this run is never claimed again while it runs.
@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def health_sweep() -> None:
    """Record connector status changes, then alert on them (each change alerted once)."""
    health.health_sweep()
    alerts.alerts_send()

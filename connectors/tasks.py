from __future__ import annotations

from celery import shared_task

from connectors import alerts, health


@shared_task(ignore_result=True)
def health_sweep() -> None:
    """Record connector status changes, then alert on them (each change alerted once)."""
    health.health_sweep()
    alerts.alerts_send()

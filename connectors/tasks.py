from __future__ import annotations

from celery import shared_task

from connectors import services


@shared_task(ignore_result=True)
def health_sweep() -> None:
    """Record connector status changes, then alert on them (each change alerted once)."""
    services.health_sweep()
    services.alerts_send()

from __future__ import annotations

from celery import shared_task

from delivery import alerts


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def failure_alerts() -> None:
    """Record profiles whose install failures crossed the threshold, then alert each crossing once."""
    alerts.failure_sweep()
    alerts.alerts_send()

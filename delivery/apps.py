from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"

    def ready(self) -> None:
        from connectors.signals import device_jobs_failed
        from delivery.models import DeliveryState
        from profiles.states import register_reported_states

        register_reported_states(DeliveryState)
        device_jobs_failed.connect(_jobs_failed, dispatch_uid="delivery.jobs_failed")


def _jobs_failed(sender: Any, job_ids: list[int], **kwargs: Any) -> None:
    from delivery.checkin import rows_for_jobs_failed

    rows_for_jobs_failed(job_ids)

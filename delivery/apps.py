from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"

    def ready(self) -> None:
        from connectors.signals import device_jobs_failed
        from delivery.models import DeliveryState
        from delivery.panels import device_panel, enrolment_panel, home_section, user_clock, user_panel
        from directory.panels import (
            DevicePanel,
            UserPanel,
            register_device_panel,
            register_user_clock,
            register_user_panel,
        )
        from portal.home import HomeSection, register_home_section
        from profiles.states import register_reported_states

        register_reported_states(DeliveryState)
        register_user_panel(UserPanel("delivery/_user_panel.html", user_panel, order=15))
        register_user_clock("delivery", user_clock)
        register_device_panel(DevicePanel("delivery/_device_enrolment.html", enrolment_panel, order=5))
        register_device_panel(DevicePanel("delivery/_device_panel.html", device_panel, order=10))
        register_home_section(HomeSection("delivery/_home_failing.html", home_section, order=25))
        device_jobs_failed.connect(_jobs_failed, dispatch_uid="delivery.jobs_failed")


def _jobs_failed(sender: Any, job_ids: list[int], **kwargs: Any) -> None:
    from delivery.checkin import rows_for_jobs_failed

    rows_for_jobs_failed(job_ids)

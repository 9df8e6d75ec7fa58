from __future__ import annotations

from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"

    def ready(self) -> None:
        from delivery.models import DeliveryState
        from profiles.states import register_reported_states

        register_reported_states(DeliveryState)

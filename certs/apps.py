from __future__ import annotations

from django.apps import AppConfig


class CertsConfig(AppConfig):
    name = "certs"

    def ready(self) -> None:
        from certs.views.certificates import user_panel
        from directory.panels import UserPanel, register_user_panel

        register_user_panel(UserPanel("certs/_user_panel.html", user_panel, order=10))

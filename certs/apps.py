from __future__ import annotations

from django.apps import AppConfig


class CertsConfig(AppConfig):
    name = "certs"

    def ready(self) -> None:
        from certs.home import expiry_section, failed_uploads_section
        from certs.views.certificates import user_panel
        from directory.panels import UserPanel, register_user_panel
        from portal.home import HomeSection, register_home_section

        register_user_panel(UserPanel("certs/_user_panel.html", user_panel, order=10))
        register_home_section(HomeSection("certs/_home_expiry.html", expiry_section, order=10))
        register_home_section(
            HomeSection("certs/_home_failed_uploads.html", failed_uploads_section, order=20)
        )

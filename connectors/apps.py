from __future__ import annotations

from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "connectors"

    def ready(self) -> None:
        from certs.hooks import KeysSection, register_keys_section
        from connectors.home import health_section
        from connectors.views import keys_section
        from portal.home import HomeSection, register_home_section

        # Health moves with time (a connector falls silent without any change): never kept.
        register_home_section(
            HomeSection("connectors/_health_summary.html", health_section, order=40, kept=False)
        )
        register_keys_section(KeysSection("connectors/_keys_section.html", keys_section, order=10))

from __future__ import annotations

from django.apps import AppConfig

# Seconds a connector's health on Home may be old: heartbeats come minutes apart.
HEALTH_ON_HOME_MAX_AGE = 5


class ConnectorsConfig(AppConfig):
    name = "connectors"

    def ready(self) -> None:
        from certs.hooks import KeysSection, register_keys_section
        from connectors.home import health_section
        from connectors.views import keys_section
        from portal.home import HomeSection, register_home_section

        # Health moves with time (a connector falls silent without any change): kept a few seconds.
        register_home_section(
            HomeSection(
                "connectors/_health_summary.html", health_section, order=40, max_age=HEALTH_ON_HOME_MAX_AGE
            )
        )
        register_keys_section(KeysSection("connectors/_keys_section.html", keys_section, order=10))

from __future__ import annotations

from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "connectors"

    def ready(self) -> None:
        from certs.hooks import KeysSection, register_keys_section
        from connectors.views import keys_section

        register_keys_section(KeysSection("connectors/_keys_section.html", keys_section, order=10))

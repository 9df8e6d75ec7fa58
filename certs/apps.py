from __future__ import annotations

from django.apps import AppConfig


class CertsConfig(AppConfig):
    name = "certs"

from __future__ import annotations

from django.apps import AppConfig


class GraphConfig(AppConfig):
    name = "graph"
    verbose_name = "Microsoft Graph"
    default_auto_field = "django.db.models.BigAutoField"

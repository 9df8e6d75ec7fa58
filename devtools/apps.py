from __future__ import annotations

from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Development only: the demo tenant, the ``demo`` command and the local Microsoft Graph emulator.

    Installed everywhere so that its commands refuse to run in production instead of being unknown;
    no product app imports it.
    """

    name = "devtools"
    verbose_name = "Development tools"

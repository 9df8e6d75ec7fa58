from __future__ import annotations

from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profiles"

    def ready(self) -> None:
        from directory.panels import UserPanel, register_user_panel
        from profiles.panels import user_profiles_panel

        register_user_panel(UserPanel("profiles/_user_panel.html", user_profiles_panel, order=20))

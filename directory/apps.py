from __future__ import annotations

from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    name = "directory"

    def ready(self) -> None:
        from directory.home import counts_section
        from portal.home import HomeSection, register_home_section

        register_home_section(HomeSection("directory/_home_counts.html", counts_section, order=30))

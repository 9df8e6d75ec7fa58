"""Sections of Home, contributed by the apps that own their figures.

The portal app sits below every domain app, so Home does not compute their figures itself.
Each app registers its sections from its ``AppConfig.ready()``::

    register_home_section(HomeSection("certs/_home_expiry.html", expiry_section, order=10))

A section's ``context`` function returns the variables its template uses, or ``None`` to leave
the section out (for example when the admin may not read that area). The template sees the
page's variables and, on top, its own; they are gone again after the section.
"""

from __future__ import annotations

from typing import Any

from portal.http import AuthenticatedHttpRequest
from portal.lib import sections


class HomeSection(sections.Section[[AuthenticatedHttpRequest]]):
    """A section of Home."""


_HOME_SECTIONS: dict[str, HomeSection] = {}


def register_home_section(section: HomeSection) -> None:
    """Add (or replace, by template name) a section of Home."""
    _HOME_SECTIONS[section.template] = section


def home_sections(request: AuthenticatedHttpRequest) -> list[dict[str, Any]]:
    """The sections to show, in order: ``[{"template": ..., "context": {...}}]``."""
    return sections.shown(_HOME_SECTIONS.values(), request)

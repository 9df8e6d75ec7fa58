"""Sections of Home, contributed by the apps that own their figures.

The portal app sits below every domain app, so Home does not compute their figures itself.
Each app registers its sections from its ``AppConfig.ready()``::

    register_home_section(HomeSection("certs/_home_expiry.html", expiry_section, order=10))

A section's ``context`` function returns the variables its template uses, or ``None`` to leave
the section out (for example when the admin may not read that area). The template sees the
page's variables and, on top, its own; they are gone again after the section.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portal.http import AuthenticatedHttpRequest

SectionContext = Callable[[AuthenticatedHttpRequest], dict[str, Any] | None]


@dataclass(frozen=True)
class HomeSection:
    template: str
    context: SectionContext
    order: int = 100


_HOME_SECTIONS: dict[str, HomeSection] = {}


def register_home_section(section: HomeSection) -> None:
    """Add (or replace, by template name) a section of Home."""
    _HOME_SECTIONS[section.template] = section


def home_sections(request: AuthenticatedHttpRequest) -> list[dict[str, Any]]:
    """The sections to show, in order: ``[{"template": ..., "context": {...}}]``."""
    shown = []
    for section in sorted(_HOME_SECTIONS.values(), key=lambda s: (s.order, s.template)):
        context = section.context(request)
        if context is not None:
            shown.append({"template": section.template, "context": context})
    return shown

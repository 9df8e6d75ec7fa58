"""Sections of Home, contributed by the apps that own their figures.

The portal app sits below every domain app, so Home does not compute their figures itself.
Each app registers its sections from its ``AppConfig.ready()``::

    register_home_section(HomeSection("certs/_home_expiry.html", expiry_section, order=10))

A section's ``context`` function returns the variables its template uses, or ``None`` to leave
the section out (for example when the admin may not read that area). The template sees the
page's own variables (not the signed-in admin's: it is rendered apart) and, on top, its own.

A section is rendered once and kept for every admin of the same scope until the next change
(``portal.summaries.fragment``), unless it registers with ``kept=False``: one whose figures move
with time rather than with changes (a connector falls silent without any audit event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from portal import summaries
from portal.http import AuthenticatedHttpRequest
from portal.lib import sections


@dataclass(frozen=True)
class HomeSection(sections.Section[[AuthenticatedHttpRequest]]):
    """A section of Home; ``kept`` False when its figures change with time, not with changes."""

    kept: bool = True


_HOME_SECTIONS: dict[str, HomeSection] = {}


def register_home_section(section: HomeSection) -> None:
    """Add (or replace, by template name) a section of Home."""
    _HOME_SECTIONS[section.template] = section


def home_sections(request: AuthenticatedHttpRequest) -> list[dict[str, Any]]:
    """The sections to show, in order: ``[{"template": ..., "context": {...}}]``."""
    return sections.shown(_HOME_SECTIONS.values(), request)


def rendered_home_sections(request: AuthenticatedHttpRequest, page: dict[str, Any]) -> list[SafeString]:
    """Each section shown, rendered with ``page`` (the page's own variables) under its own."""
    out = []
    for section in sorted(_HOME_SECTIONS.values(), key=lambda s: (s.order, s.template)):

        def render(section: HomeSection = section) -> str:
            context = section.context(request)
            return "" if context is None else render_to_string(section.template, page | context)

        html = summaries.fragment(request, f"home:{section.template}", render) if section.kept else render()
        if html:
            out.append(mark_safe(html))  # rendered by the template engine, which escaped it
    return out

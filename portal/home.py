"""Sections of Home, contributed by the apps that own their figures.

The portal app sits below every domain app, so Home does not compute their figures itself.
Each app registers its sections from its ``AppConfig.ready()``::

    register_home_section(HomeSection("certs/_home_expiry.html", expiry_section, order=10))

A section's ``context`` function returns the variables its template uses, or ``None`` to leave
the section out (for example when the admin may not read that area). The template sees the
page's own variables (not the signed-in admin's: it is rendered apart) and, on top, its own.

A section is rendered once and kept for every admin of the same scope until the next change
(``portal.summaries.fragment``), like Home itself (``portal.summaries.page``). A section whose
figures move with time rather than with changes (a connector falls silent without any audit
event) registers with ``max_age``: it is kept at most that many seconds whatever changed, and put
into the kept page on every view; with ``kept=False`` it is rendered on every view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from portal import summaries
from portal.http import AuthenticatedHttpRequest
from portal.lib import sections


@dataclass(frozen=True)
class HomeSection(sections.Section[[AuthenticatedHttpRequest]]):
    """A section of Home; ``max_age`` (seconds) or ``kept`` False when its figures change with time."""

    kept: bool = True
    max_age: float | None = None

    @property
    def live(self) -> bool:
        return not self.kept or self.max_age is not None


_HOME_SECTIONS: dict[str, HomeSection] = {}


def register_home_section(section: HomeSection) -> None:
    """Add (or replace, by template name) a section of Home."""
    _HOME_SECTIONS[section.template] = section


def home_sections(request: AuthenticatedHttpRequest) -> list[dict[str, Any]]:
    """The sections to show, in order: ``[{"template": ..., "context": {...}}]``."""
    return sections.shown(_HOME_SECTIONS.values(), request)


def rendered_home_sections(request: AuthenticatedHttpRequest, page: dict[str, Any]) -> list[SafeString]:
    """Each section shown, rendered with ``page`` (the page's own variables) under its own.

    A section that moves with time is a slot here (``portal.summaries.live_slot``), which the kept
    page fills on every view from ``live_home_sections``.
    """
    out = []
    for section in _ordered():
        name = f"home:{section.template}"
        if section.live:
            html = summaries.live_slot(name)
        else:
            html = summaries.fragment(request, name, _renderer(request, page, section))
        if html:
            out.append(mark_safe(html))  # rendered by the template engine, which escaped it
    return out


def live_home_sections(
    request: AuthenticatedHttpRequest, page: dict[str, Any]
) -> dict[str, Callable[[], str]]:
    """The renderers of the sections that move with time, by slot name."""
    live: dict[str, Callable[[], str]] = {}
    for section in _ordered():
        if section.live:
            name = f"home:{section.template}"
            render = _renderer(request, page, section)
            if section.kept and section.max_age:
                live[name] = partial(summaries.fragment, request, name, render, max_age=section.max_age)
            else:
                live[name] = render
    return live


def _ordered() -> list[HomeSection]:
    return sorted(_HOME_SECTIONS.values(), key=lambda s: (s.order, s.template))


def _renderer(
    request: AuthenticatedHttpRequest, page: dict[str, Any], section: HomeSection
) -> Callable[[], str]:
    def render() -> str:
        context = section.context(request)
        return "" if context is None else render_to_string(section.template, page | context)

    return render

"""Sections a page takes from the apps above it: each app registers a template and a context function.

A page in a lower app (the directory's user page, Home, the encryption keys page) shows what higher
apps add without importing them; they register from their ``AppConfig.ready()``. A section's context
function returns the variables of its template, or ``None`` to leave the section out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Section[**P]:
    template: str
    context: Callable[P, dict[str, Any] | None]
    order: int = 100


def shown[**P](sections: Iterable[Section[P]], *args: P.args, **kwargs: P.kwargs) -> list[dict[str, Any]]:
    """The sections to show, in order: ``[{"template": ..., "context": {...}}]``."""
    result = []
    for section in sorted(sections, key=lambda s: (s.order, s.template)):
        context = section.context(*args, **kwargs)
        if context is not None:
            result.append({"template": section.template, "context": context})
    return result

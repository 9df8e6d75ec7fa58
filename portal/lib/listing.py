"""What a list page's filter form narrows by, so an empty result can say so and offer to clear it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest

# Fields that order or locate rows without narrowing them.
_NOT_FILTERS = frozenset({"q", "sort", "page"})


def _is_set(value: Any) -> bool:
    # 0 is a value ("expiring within 0 days"); only blanks and unticked boxes are not.
    return value is not False and value not in (None, "", [], ())


def filter_state(form: forms.Form) -> dict[str, Any]:
    """For a valid form: the search text, whether anything narrows the list, and whether more than the search does."""
    search = str(form.cleaned_data.get("q") or "")
    beyond = any(_is_set(value) for name, value in form.cleaned_data.items() if name not in _NOT_FILTERS)
    return {"search": search, "filtered": bool(search) or beyond, "filtered_beyond_search": beyond}


def query_key(request: HttpRequest) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The request's query parameters in one canonical, hashable form (a cache key's part)."""
    return tuple((name, tuple(values)) for name, values in sorted(request.GET.lists()))

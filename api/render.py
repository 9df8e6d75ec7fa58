"""Answers of the busiest lists built from column values, not model objects (see benchmarks/api_lists.py).

The shapes are those of ``api.schemas``; the schemathesis test checks every answer against them.
Rows are plain dicts of the column values as the database driver reads them: the JSON encoder
writes a UUID as its text and a time as ISO 8601 (``plain``), only where it meets one, so no
per-value conversion runs in Python for the rest (strings, numbers, booleans, None). The longest
lists (certificates, audit events, profiles) go further: the database writes each item's JSON
(``columns.JsonObject``) and the answer only joins them (``page_text``, ``json_text``).

Those lists' answers are also kept (``kept_json``), as the pages' pieces are: a script polling the
same list gets the answer again until something changes.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse

from portal import summaries


def plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _json_value(value: Any) -> Any:
    """What the encoder writes for a value JSON has no type for: a UUID or a time, nothing else."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not part of an answer")


_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False, default=_json_value)


def rows(names: Sequence[str], values: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Each row as a dict of ``names``; UUIDs and times stay as they are until the answer is written."""
    names = tuple(names)
    return [dict(zip(names, row, strict=True)) for row in values]


def json_answer(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(_ENCODER.encode(body), status=status, content_type="application/json")


# What django-ninja writes for an answer of a schema: ", " and ": " between items, times already
# text (columns.SchemaTimeText), in the content type it declares.
_SCHEMA_ENCODER = json.JSONEncoder(check_circular=False)
SCHEMA_CONTENT_TYPE = "application/json; charset=utf-8"


def schema_answer(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(_SCHEMA_ENCODER.encode(body), status=status, content_type=SCHEMA_CONTENT_TYPE)


def page_text(items: Sequence[str], cursor: str | None) -> str:
    """A page answer's body (``items`` and ``next_cursor``) of items already JSON text (columns.JsonObject)."""
    return f'{{"items":[{",".join(items)}],"next_cursor":{_ENCODER.encode(cursor)}}}'


def kept_json(request: HttpRequest, name: str, text: Callable[[], str]) -> HttpResponse:
    """The JSON answer ``text()`` writes, kept like a page's piece (``portal.summaries.fragment``).

    Kept under the request's path and query string and the caller's scope until the audit clock
    moves (every change writes an audit event), and at most ``PORTAL_FRAGMENT_MAX_AGE`` seconds:
    that bounds what the clock cannot see, the moment a certificate expires. Only for answers built
    from rows every change of which is audited (never delivery or connector health rows).
    """
    return json_text(summaries.fragment(request, f"api:{name}", text, params=request.get_full_path()))


def json_text(text: str, status: int = 200) -> HttpResponse:
    """An answer already JSON text (columns.JsonObject)."""
    return HttpResponse(text, status=status, content_type="application/json")

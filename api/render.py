"""Answers of the busiest lists built from column values, not model objects (see benchmarks/api_lists.py).

The shapes are those of ``api.schemas``; the schemathesis test checks every answer against them.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.http import HttpResponse


def plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def rows(names: Sequence[str], values: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [{name: plain(v) for name, v in zip(names, row, strict=True)} for row in values]


def json_answer(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(
        json.dumps(body, separators=(",", ":")), status=status, content_type="application/json"
    )

"""Cursor paging: a page of rows after the last one seen, in primary-key order, never counted."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.db.models import Model, QuerySet

from portal.lib.refusal import Refused

MAX_LIMIT = 500
DEFAULT_LIMIT = 100


def encode(pk: int) -> str:
    return base64.urlsafe_b64encode(f"k{pk}".encode()).decode().rstrip("=")


def decode(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("k"):
            raise ValueError(raw)
        return int(raw[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Refused("bad_cursor", "The cursor is not one this API gave out.") from exc


def page[M: Model](
    rows: QuerySet[M], cursor: str | None, limit: int, *, descending: bool = False
) -> tuple[list[M], str | None]:
    """One page of ``rows`` and the cursor of the next (None on the last page)."""
    if cursor:
        last = decode(cursor)
        rows = rows.filter(pk__lt=last) if descending else rows.filter(pk__gt=last)
    found = list(rows.order_by("-pk" if descending else "pk")[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    return found, encode(found[-1].pk) if more and found else None


def limit_param(value: int | None) -> int:
    return DEFAULT_LIMIT if value is None else value


CURSOR_DOC: dict[str, Any] = {"description": "The next_cursor of the previous page."}

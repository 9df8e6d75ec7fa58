"""Cursor paging: a page of rows after the last one seen, in primary-key order, never counted.

The cursor is the last row's key as a decimal string; clients pass back ``next_cursor`` as is.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Annotated, Any

from django.db.models import Model, QuerySet
from pydantic import Field

from portal.lib.shapes import Shapes

MAX_LIMIT = 500
DEFAULT_LIMIT = 100

Cursor = Annotated[
    str | None,
    Field(default=None, pattern=r"^[0-9]{1,18}$", description="The next_cursor of the previous page."),
]
Limit = Annotated[int, Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Rows per page.")]


def page[M: Model](
    rows: QuerySet[M], cursor: str | None, limit: int, *, descending: bool = False
) -> tuple[list[M], str | None]:
    """One page of ``rows`` and the cursor of the next (None on the last page)."""
    if cursor:
        last = int(cursor)
        rows = rows.filter(pk__lt=last) if descending else rows.filter(pk__gt=last)
    found = list(rows.order_by("-pk" if descending else "pk")[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    return found, str(found[-1].pk) if more and found else None


def listing(rows: QuerySet[Any], columns: Sequence[Any], *, descending: bool = False) -> QuerySet[Any]:
    """``rows`` in paging order reading the key and ``columns``: built once (at import) per list, so a
    request clones it instead of resolving the columns again; page it with :func:`page_shaped`."""
    return rows.order_by("-pk" if descending else "pk").values_list("pk", *columns)


def page_shaped(
    shapes: Shapes,
    key: Hashable,
    build: Callable[[Mapping[str, Any]], QuerySet[Any]],
    values: Mapping[str, Any],
    cursor: str | None,
    limit: int,
    *,
    descending: bool = False,
) -> tuple[list[tuple[Any, ...]], str | None]:
    """One page of the :func:`listing` ``build`` makes from ``values``, as tuples of its columns (no
    model objects built), and the cursor of the next; its SQL compiled once per shape (``key``:
    whatever decides the query besides ``values``; see portal.lib.shapes)."""
    bound = dict(values)
    if cursor:
        bound["cursor"] = int(cursor)

    def paged(v: Mapping[str, Any]) -> QuerySet[Any]:
        rows = build(v)
        if "cursor" in v:
            rows = rows.filter(pk__lt=v["cursor"]) if descending else rows.filter(pk__gt=v["cursor"])
        return rows[: limit + 1]

    found = shapes.rows((key, limit, descending), paged, bound)
    more = len(found) > limit
    found = found[:limit]
    return [row[1:] for row in found], str(found[-1][0]) if more and found else None

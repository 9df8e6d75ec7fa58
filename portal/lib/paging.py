"""A paginator for large tables: it counts only as far as the page shows, and reads only the page's rows."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

# Rows counted at least (or as far as the page asked for), unless the caller says otherwise.
COUNT_AT_LEAST = 1000

if TYPE_CHECKING:
    _Paginator = Paginator[Any]
else:  # Paginator is generic only in the type stubs.
    _Paginator = Paginator


class CountAsFarAsShown(_Paginator):
    """Pages through a large table without counting all of it, nor joining the rows it skips.

    A page among the first ``count_at_least`` rows is read first, with one row more: when
    that row is missing, the page is the last one and the count is known without counting.
    Otherwise rows are counted up to the end of the page asked for, and at least
    ``count_at_least``; beyond that the page says "more than" (``counted_all`` is False) and
    still offers the next page. A page's rows are picked by primary key along the ordering's
    index, then read with their related rows and annotations, so a deep page does not read
    every row before it in full, and per-row annotations (counts of members) are computed for
    the page's rows only.
    """

    def __init__(
        self,
        object_list: QuerySet[Any],
        per_page: int,
        *,
        number: str | None,
        count_at_least: int | None = None,
    ) -> None:
        super().__init__(object_list, per_page)
        self.rows = object_list
        try:
            self.wanted = max(1, int(number or 1))
        except ValueError:
            self.wanted = 1
        self.count_at_least = COUNT_AT_LEAST if count_at_least is None else count_at_least
        self.limit = max(self.count_at_least, self.wanted * per_page) + 1

    def _rows(self, number: int, extra: int = 0) -> list[Any]:
        bottom = (number - 1) * self.per_page
        chosen = self.rows.values("pk")[bottom : bottom + self.per_page + extra]
        return list(self.rows.filter(pk__in=chosen))

    @cached_property
    def _wanted_rows(self) -> list[Any]:
        return self._rows(self.wanted, extra=1)

    @cached_property
    def count(self) -> int:
        # A deep page may lie past the end: count first rather than skip rows for nothing.
        if self.wanted * self.per_page <= self.count_at_least:
            found = len(self._wanted_rows)
            if found <= self.per_page and (found or self.wanted == 1):
                return (self.wanted - 1) * self.per_page + found
        return self.rows.order_by().values("pk")[: self.limit].count()

    @property
    def counted_all(self) -> bool:
        return self.count < self.limit

    @property
    def at_least(self) -> int:
        return self.limit - 1

    def page(self, number: int | str) -> Page[Any]:
        number = self.validate_number(number)
        rows = self._wanted_rows[: self.per_page] if number == self.wanted else self._rows(number)
        return Page(rows, number, self)

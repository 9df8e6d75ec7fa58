"""A many-row query by one integer, with the SQL built once: for the lists a hot page reads per object.

Building a query through the ORM (filter, order, compile) costs several times what running it
does (see ``portal.lib.lean``, which does the same for one row by a unique field). ``Prepared``
builds its queryset once per thread and connection with a marker for the one value that changes
(a user's id, say), then only binds that value::

    OWNED = Prepared(lambda user_id: Device.objects.filter(primary_user_id=user_id).order_by("name"))
    devices = OWNED.rows(user.pk)

The queryset must read whole rows of its model (no ``select_related``, ``only``, ``annotate``) or
be a ``values_list``; every other value in it is fixed when it is first built, so nothing that
changes between calls (the time, the signed-in admin) may be part of it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections, models
from django.db.models.query import ValuesListIterable

# Stands for the value while the query is built: an id no row has, found again among the parameters.
_MARKER = -7_309_218_446_513


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    slots: tuple[int, ...]  # where the value goes among params
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]
    model: type[models.Model] | None  # None: values_list rows
    attnames: tuple[str, ...]


_local = threading.local()


class Prepared[T]:
    """A queryset of one integer parameter, compiled once per thread; ``rows(value)`` runs it."""

    def __init__(self, build: Callable[[int], models.QuerySet[Any, T]], *, using: str = "default") -> None:
        self._build = build
        self._using = using

    def _compiled(self) -> _Compiled:
        found: dict[int, _Compiled] = _local.__dict__.setdefault("prepared", {})
        compiled = found.get(id(self))
        if compiled is None:
            queryset = self._build(_MARKER)
            compiler = queryset.query.get_compiler(self._using)
            sql, params = compiler.as_sql()
            slots = tuple(i for i, value in enumerate(params) if value == _MARKER)
            if not slots:
                raise ValueError("the query does not use its parameter")
            columns = [column for column, _, _ in compiler.select[: compiler.col_count]]
            model: type[models.Model] | None = None
            attnames: tuple[str, ...] = ()
            if not issubclass(queryset._iterable_class, ValuesListIterable):
                model = queryset.model
                attnames = tuple(f.attname for f in model._meta.concrete_fields)
                if len(columns) != len(attnames) or queryset.query.select_related:
                    raise ValueError("only whole rows of the model or values_list rows")
            converters = compiler.get_converters(columns)
            compiled = found[id(self)] = _Compiled(
                sql,
                tuple(params),
                slots,
                tuple((pos, tuple(convs), expression) for pos, (convs, expression) in converters.items()),
                model,
                attnames,
            )
        return compiled

    def rows(self, value: int) -> list[T]:
        """The queryset's rows for ``value`` (model instances, or tuples for a ``values_list``)."""
        compiled = self._compiled()
        params = list(compiled.params)
        for slot in compiled.slots:
            params[slot] = int(value)
        connection = connections[self._using]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            fetched = cursor.fetchall()
        rows: list[Any] = []
        for row in fetched:
            values = list(row)
            for pos, convs, expression in compiled.converters:
                for convert in convs:
                    values[pos] = convert(values[pos], expression, connection)
            if compiled.model is None:
                rows.append(tuple(values))
            else:
                rows.append(compiled.model.from_db(self._using, list(compiled.attnames), values))
        return rows

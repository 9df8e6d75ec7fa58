"""One row by one field, with the SQL built once: for the few lookups every page makes.

Building a query through the ORM (filter, compile) costs several times what running it does:
about 0.6 ms against 0.1 ms for a row by primary key. The signed-in admin is read that way on
every request, and a kept page has little else to do. ``get`` compiles the ORM's own query the
first time (same SQL, same column order, the same converters from database values), and then
only binds the value. Use it only where a page runs the lookup on every view.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections, models

Converters = tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]


@dataclass(frozen=True)
class _Statement:
    sql: str
    field: models.Field[Any, Any]
    converters: Converters


# Converters are bound to the connection that compiled them, and connections to threads.
_local = threading.local()


def _statement(model: type[models.Model], field_name: str, value: Any, alias: str) -> _Statement | None:
    found: dict[tuple[Any, ...], _Statement | None] = _local.__dict__.setdefault("statements", {})
    key = (model, field_name, alias)
    if key not in found:
        query = model._default_manager.db_manager(alias).filter(**{field_name: value}).query
        compiler = query.get_compiler(alias)
        sql, params = compiler.as_sql()
        columns = [column for column, _, _ in compiler.select[: compiler.col_count]]
        field = model._meta.get_field(field_name) if field_name != "pk" else model._meta.pk
        if len(params) != 1 or len(columns) != len(model._meta.concrete_fields) or field is None:
            found[key] = None  # not a plain one-value lookup: the ORM does it
        else:
            converters = compiler.get_converters(columns)
            found[key] = _Statement(
                sql,
                field,  # type: ignore[arg-type]
                tuple((pos, tuple(convs), expression) for pos, (convs, expression) in converters.items()),
            )
    return found[key]


def get[M: models.Model](model: type[M], field_name: str, value: Any, *, using: str = "default") -> M | None:
    """The ``model`` row whose ``field_name`` (unique, or ``"pk"``) is ``value``, or None."""
    statement = _statement(model, field_name, value, using)
    if statement is None:
        return model._default_manager.db_manager(using).filter(**{field_name: value}).first()
    connection = connections[using]
    bound = statement.field.get_db_prep_value(value, connection, prepared=False)
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, [bound])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for pos, converters, expression in statement.converters:
        for convert in converters:
            values[pos] = convert(values[pos], expression, connection)
    return model.from_db(using, [f.attname for f in model._meta.concrete_fields], values)


class Fixed:
    """A ``values_list`` query whose parameters never change, compiled once per thread.

    ``Fixed(lambda: Run.objects.filter(state="done").order_by("-finished_at").values_list("finished_at")[:1])``
    """

    def __init__(self, build: Callable[[], models.QuerySet[Any, Any]], *, using: str = "default") -> None:
        self._build = build
        self._using = using

    def _compiled(self) -> tuple[str, tuple[Any, ...], Converters]:
        found: dict[int, tuple[str, tuple[Any, ...], Converters]] = _local.__dict__.setdefault("fixed", {})
        compiled = found.get(id(self))
        if compiled is None:
            compiler = self._build().query.get_compiler(self._using)
            sql, params = compiler.as_sql()
            columns = [column for column, _, _ in compiler.select[: compiler.col_count]]
            converters = compiler.get_converters(columns)
            compiled = found[id(self)] = (
                sql,
                tuple(params),
                tuple((pos, tuple(convs), expression) for pos, (convs, expression) in converters.items()),
            )
        return compiled

    def rows(self) -> list[list[Any]]:
        sql, params, converters = self._compiled()
        connection = connections[self._using]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = [list(row) for row in cursor.fetchall()]
        for values in rows:
            for pos, convs, expression in converters:
                for convert in convs:
                    values[pos] = convert(values[pos], expression, connection)
        return rows

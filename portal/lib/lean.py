"""One row by one field, with the SQL built once: for the few lookups every page makes.

Building a query through the ORM (filter, compile) costs several times what running it does:
about 0.6 ms against 0.1 ms for a row by primary key. The signed-in admin is read that way on
every request, and a kept page has little else to do. ``get`` compiles the ORM's own query the
first time (same SQL, same column order, the same converters from database values), and then
only binds the value. ``Prepared`` does the same for a many-row query by one integer (a user's
id, say), and ``Fixed`` for a query without parameters. Use them only where a page runs the query on
every view. ``get_with`` reads a row and the row its foreign key names in one query.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections, models
from django.db.models.query import ValuesListIterable

Converters = tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]


@dataclass(frozen=True)
class Statement:
    sql: str
    field: models.Field[Any, Any]
    converters: Converters


# Converters are bound to the connection that compiled them, and connections to threads.
_local = threading.local()


def _compile(queryset: models.QuerySet[Any, Any], alias: str) -> tuple[str, list[Any], list[Any], Converters]:
    """The queryset's SQL and parameters as the ORM would run them, its selected columns, and the
    converters the ORM applies to their values."""
    compiler = queryset.query.get_compiler(alias)
    sql, params = compiler.as_sql()
    columns = [column for column, _, _ in compiler.select[: compiler.col_count]]
    converters = compiler.get_converters(columns)
    return (
        sql,
        list(params),
        columns,
        tuple((pos, tuple(convs), expression) for pos, (convs, expression) in converters.items()),
    )


def _statement(model: type[models.Model], field_name: str, value: Any, alias: str) -> Statement | None:
    found: dict[tuple[Any, ...], Statement | None] = _local.__dict__.setdefault("statements", {})
    key = (model, field_name, alias)
    if key not in found:
        queryset = model._default_manager.db_manager(alias).filter(**{field_name: value})
        sql, params, columns, converters = _compile(queryset, alias)
        field = model._meta.get_field(field_name) if field_name != "pk" else model._meta.pk
        if len(params) != 1 or len(columns) != len(model._meta.concrete_fields) or field is None:
            found[key] = None  # not a plain one-value lookup: the ORM does it
        else:
            found[key] = Statement(sql, field, converters)  # type: ignore[arg-type]
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
    return None if row is None else instance(model, row, statement, using=using)


def statement(
    model: type[models.Model], field_name: str, sample: Any, *, using: str = "default"
) -> Statement | None:
    """What ``get`` runs: the SQL (one parameter, the value of ``field_name``) with its converters, for
    a caller that reads the row as part of a larger statement (``sample``: any valid value of the
    field). None when ``get`` falls back to the ORM."""
    return _statement(model, field_name, sample, using)


def instance[M: models.Model](model: type[M], row: Any, statement: Statement, *, using: str = "default") -> M:
    """The ``model`` instance of a row whose first columns are those of ``statement``'s SQL."""
    values = _converted(row[: len(model._meta.concrete_fields)], statement.converters, connections[using])
    return model.from_db(using, [f.attname for f in model._meta.concrete_fields], values)


@dataclass(frozen=True)
class _Joined:
    sql: str
    field: models.Field[Any, Any]
    converters: Converters
    split: int  # the related row's columns start here
    related: type[models.Model]


def get_with[M: models.Model](
    model: type[M], field_name: str, value: Any, related: str, *, using: str = "default"
) -> M | None:
    """:func:`get` with the row of the foreign key ``related`` read in the same query and set on it
    (``select_related``): one round trip where two ``get`` calls take two."""
    found: dict[tuple[Any, ...], _Joined | None] = _local.__dict__.setdefault("joined", {})
    key = (model, field_name, related, using)
    if key not in found:
        queryset = (
            model._default_manager.db_manager(using).select_related(related).filter(**{field_name: value})
        )
        sql, params, columns, converters = _compile(queryset, using)
        field = model._meta.get_field(field_name)
        other = model._meta.get_field(related).related_model
        width = len(model._meta.concrete_fields)
        if (
            len(params) != 1
            or not isinstance(other, type)
            or len(columns) != width + len(other._meta.concrete_fields)
        ):
            found[key] = None  # not a plain one-value lookup of two whole rows: the ORM does it
        else:
            found[key] = _Joined(sql, field, converters, width, other)  # type: ignore[arg-type]
    joined = found[key]
    if joined is None:
        return (
            model._default_manager.db_manager(using)
            .select_related(related)
            .filter(**{field_name: value})
            .first()
        )
    connection = connections[using]
    bound = joined.field.get_db_prep_value(value, connection, prepared=False)
    with connection.cursor() as cursor:
        cursor.execute(joined.sql, [bound])
        row = cursor.fetchone()
    if row is None:
        return None
    values = _converted(row, joined.converters, connection)
    instance = model.from_db(using, [f.attname for f in model._meta.concrete_fields], values[: joined.split])
    owner = joined.related.from_db(
        using, [f.attname for f in joined.related._meta.concrete_fields], values[joined.split :]
    )
    setattr(instance, related, owner)
    return instance


def _converted(row: Any, converters: Converters, connection: Any) -> list[Any]:
    """A fetched row's values as the ORM gives them (its converters from database values)."""
    values = list(row)
    for pos, convs, expression in converters:
        for convert in convs:
            values[pos] = convert(values[pos], expression, connection)
    return values


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


class Prepared[T]:
    """A queryset of one integer parameter, compiled once per thread; ``rows(value)`` runs it.

    ``Prepared(lambda user_id: Device.objects.filter(primary_user_id=user_id).order_by("name"))``: the
    queryset must read whole rows of its model (no ``select_related``, ``only``, ``annotate``) or be a
    ``values_list``; every other value in it is fixed when it is first built, so nothing that changes
    between calls (the time, the signed-in admin) may be part of it.
    """

    def __init__(
        self, build: Callable[[int], models.QuerySet[Any, T]], *, using: str = "default", fixed: bool = False
    ) -> None:
        self._build = build
        self._using = using
        self._fixed = fixed

    def _compiled(self) -> _Compiled:
        found: dict[int, _Compiled] = _local.__dict__.setdefault("prepared", {})
        compiled = found.get(id(self))
        if compiled is None:
            queryset = self._build(_MARKER)
            sql, params, columns, converters = _compile(queryset, self._using)
            slots = tuple(i for i, value in enumerate(params) if value == _MARKER)
            if not slots and not self._fixed:
                raise ValueError("the query does not use its parameter")
            model: type[models.Model] | None = None
            attnames: tuple[str, ...] = ()
            if not issubclass(queryset._iterable_class, ValuesListIterable):
                model = queryset.model
                attnames = tuple(f.attname for f in model._meta.concrete_fields)
                if len(columns) != len(attnames) or queryset.query.select_related:
                    raise ValueError("only whole rows of the model or values_list rows")
            compiled = found[id(self)] = _Compiled(sql, tuple(params), slots, converters, model, attnames)
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
            values = _converted(row, compiled.converters, connection)
            if compiled.model is None:
                rows.append(tuple(values))
            else:
                rows.append(compiled.model.from_db(self._using, list(compiled.attnames), values))
        return rows


class Fixed[T]:
    """A queryset without parameters, compiled once per thread: ``Fixed(lambda: Run.objects...)``."""

    def __init__(self, build: Callable[[], models.QuerySet[Any, T]], *, using: str = "default") -> None:
        self._prepared: Prepared[T] = Prepared(lambda _unused: build(), using=using, fixed=True)

    def rows(self) -> list[T]:
        return self._prepared.rows(0)

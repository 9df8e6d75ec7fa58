"""One row by one field, with the SQL built once: for the few lookups every page makes.

Building a query through the ORM (filter, compile) costs several times what running it does:
about 0.6 ms against 0.1 ms for a row by primary key. The signed-in admin is read that way on
every request, and a kept page has little else to do. ``get`` compiles the ORM's own query the
first time (same SQL, same column order, the same converters from database values), and then
only binds the value. ``Prepared`` does the same for a many-row query by one integer (a user's
id, say), and ``Fixed`` for a query without parameters. ``Query`` takes any queryset of text or
integer parameters, ``select_related``, ``only`` and ``defer`` included (a device's check-in runs
a dozen of them a second).
Use them only where a page or a call runs the query every time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, models
from django.db.models.constants import OnConflict
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesListIterable,
    get_related_populators,
)

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


# Stand for the values while a Query is built; each is found again among the parameters.
_TEXT_MARKER = "\x1flean-parameter-{}\x1f"
_INT_MARKER = -7_309_218_446_000


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, int], ...]  # (position among params, which value)
    converters: Converters
    # Model rows: the model, its columns' slice and attnames, the populators of select_related rows.
    model: type[models.Model] | None
    start: int
    end: int
    attnames: tuple[str, ...]
    populators: tuple[Any, ...]
    flat: bool


class Query[T]:
    """A queryset of text or integer parameters, compiled once per thread; ``rows(*values)`` runs it.

    ``Query(lambda h: Credential.objects.select_related("device").filter(hash=h), str)``: one type
    per parameter (``str`` or ``int``), each a plain value compared in the SQL as it is (no list,
    no date, no UUID). Rows are what the queryset would give: model instances with their
    ``select_related`` rows, ``only``/``defer`` honoured, or ``values_list`` tuples (or values when
    ``flat``). As with ``Prepared``, everything else in the queryset is fixed when first built.
    """

    def __init__(
        self, build: Callable[..., models.QuerySet[Any, T]], *kinds: type, using: str = "default"
    ) -> None:
        if any(kind not in (str, int) for kind in kinds):
            raise ValueError("parameters are str or int")
        self._build = build
        self._kinds = kinds
        self._using = using

    def _markers(self) -> list[Any]:
        return [
            _TEXT_MARKER.format(i) if kind is str else _INT_MARKER - i for i, kind in enumerate(self._kinds)
        ]

    def _plan(self) -> _Plan:
        found: dict[int, _Plan] = _local.__dict__.setdefault("queries", {})
        plan = found.get(id(self))
        if plan is None:
            plan = found[id(self)] = self._compile()
        return plan

    def _compile(self) -> _Plan:
        markers = self._markers()
        queryset = self._build(*markers)
        compiler = queryset.query.get_compiler(self._using)
        sql, params = compiler.as_sql()
        slots = tuple(
            (pos, markers.index(value))
            for pos, value in enumerate(params)
            if isinstance(value, str | int) and not isinstance(value, bool) and value in markers
        )
        if {which for _pos, which in slots} != set(range(len(markers))):
            raise ValueError("the query does not use each of its parameters as it is")
        select = compiler.select
        converters = compiler.get_converters([column for column, _, _ in select[: compiler.col_count]])
        converted = tuple((pos, tuple(convs), expression) for pos, (convs, expression) in converters.items())
        iterable = queryset._iterable_class
        if iterable is ModelIterable:
            if compiler.annotation_col_map or queryset._known_related_objects:  # type: ignore[attr-defined]
                raise ValueError("no annotations or known related objects")
            info = compiler.klass_info
            assert info is not None
            start, end = info["select_fields"][0], info["select_fields"][-1] + 1
            fetch_mode = queryset._fetch_mode  # type: ignore[attr-defined]
            populators = get_related_populators(info, select, self._using, fetch_mode)
            if fetch_mode.track_peers:
                raise ValueError("a fetch mode that tracks peers keeps state between calls")
            return _Plan(
                sql,
                tuple(params),
                slots,
                converted,
                info["model"],
                start,
                end,
                tuple(f[0].target.attname for f in select[start:end]),
                tuple(populators),
                False,
            )
        if iterable not in (ValuesListIterable, FlatValuesListIterable) or queryset.query.extra_select:
            raise ValueError("model rows or values_list rows")
        flat = iterable is FlatValuesListIterable
        return _Plan(sql, tuple(params), slots, converted, None, 0, compiler.col_count, (), (), flat)

    def rows(self, *values: Any) -> list[T]:
        """The queryset's rows for ``values``, one per parameter, in order."""
        plan = self._plan()
        params = list(plan.params)
        for pos, which in plan.slots:
            value = values[which]
            params[pos] = str(value) if self._kinds[which] is str else int(value)
        connection = connections[self._using]
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, params)
            fetched = cursor.fetchall()
        found: list[Any] = []
        for row in fetched:
            values_ = _converted(row, plan.converters, connection) if plan.converters else row
            if plan.model is None:
                found.append(values_[0] if plan.flat else tuple(values_[: plan.end]))
                continue
            obj = plan.model.from_db(self._using, list(plan.attnames), values_[plan.start : plan.end])
            for populator in plan.populators:
                populator.populate(values_, obj)
            found.append(obj)
        return found

    def first(self, *values: Any) -> T | None:
        """The first row for ``values`` (the queryset should be limited or unique), or None."""
        found = self.rows(*values)
        return found[0] if found else None


def update(
    model: type[models.Model],
    pk: Any,
    values: dict[str, Any],
    *,
    below: tuple[str, Any] | None = None,
    using: str = "default",
) -> int:
    """``UPDATE`` one row's fields (names or attnames) to ``values``; the rows changed (0 or 1).

    ``below``: (field, value), only while the row's field is below the value (a conditional
    update). Values go through each field's own preparation for saving, as ``QuerySet.update``
    does; unlike it, no ``auto_now`` field is stamped, no signal sent.
    """
    connection = connections[using]
    meta = model._meta
    fields: list[models.Field[Any, Any]] = [meta.get_field(name) for name in values]  # type: ignore[misc]
    guard: models.Field[Any, Any] | None = meta.get_field(below[0]) if below is not None else None  # type: ignore[assignment]
    pk_field = meta.pk
    assert pk_field is not None
    key = (model, tuple(values), below[0] if below is not None else None, using)
    found: dict[tuple[Any, ...], str] = _local.__dict__.setdefault("updates", {})
    sql = found.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        sets = ", ".join(f"{quote(str(f.column))} = %s" for f in fields)
        sql = f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {quote(str(pk_field.column))} = %s"
        if guard is not None:
            sql += f" AND {quote(str(guard.column))} < %s"
        found[key] = sql
    params = [f.get_db_prep_save(v, connection) for f, v in zip(fields, values.values(), strict=True)]
    params.append(pk_field.get_db_prep_value(pk, connection, prepared=False))
    if guard is not None and below is not None:
        params.append(guard.get_db_prep_value(below[1], connection, prepared=False))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def insert(
    objects: Sequence[models.Model], *, ignore_conflicts: bool = False, using: str = "default"
) -> None:
    """``INSERT`` new ``objects`` of one model in one statement, their SQL written once.

    As ``bulk_create`` does: each field's value as saving a new object gives it (``auto_now``
    stamped, defaults set by the constructor), the objects marked saved, their primary keys set
    unless conflicts are ignored (those rows are not known). No ``save()`` is called and no signal
    sent: for models whose saving does nothing more than write the row.
    """
    if not objects:
        return
    model = type(objects[0])
    connection = connections[using]
    meta = model._meta
    pk_field = meta.pk
    assert pk_field is not None
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
    returning = not ignore_conflicts and connection.features.can_return_rows_from_bulk_insert
    if not returning and not ignore_conflicts and meta.auto_field is not None:
        # The new keys could not be read back: the ORM knows each database's way.
        model._default_manager.db_manager(using).bulk_create(objects)
        return
    key = (model, len(objects), ignore_conflicts, returning, using)
    found: dict[tuple[Any, ...], str] = _local.__dict__.setdefault("inserts", {})
    sql = found.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        on_conflict = OnConflict.IGNORE if ignore_conflicts else None
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        sql = (
            f"{connection.ops.insert_statement(on_conflict=on_conflict)} {quote(meta.db_table)} "
            f"({', '.join(quote(str(f.column)) for f in fields)}) VALUES {', '.join([row] * len(objects))}"
        )
        suffix = connection.ops.on_conflict_suffix_sql(fields, on_conflict, None, None)
        if suffix:
            sql += f" {suffix}"
        if returning:
            sql += f" RETURNING {quote(str(pk_field.column))}"
        found[key] = sql
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objects for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        keys = [r[0] for r in cursor.fetchall()] if returning else []
    for i, obj in enumerate(objects):
        if keys:
            setattr(obj, str(pk_field.attname), keys[i])
        obj._state.adding = False
        obj._state.db = using

"""Column values read as the text an answer shows, written by the database, not by Python.

A list answer of 100 certificates holds 700 UUIDs and times; reading each as an object and writing
it back as text cost more than the rest of the answer. These expressions make the database send the
text itself: a UUID as ``str(uuid.UUID)`` writes it (lower case, with dashes) and a time as
``datetime.isoformat()`` writes a UTC time (``2026-11-30T20:25:24.661833+00:00``, no fraction when
it is zero). The answers carry the same values as the schemas would (api/tests/test_api_lists.py).
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Func, TextField


class UuidText(Func):
    """A UUID column as its canonical text (PostgreSQL stores a uuid; SQLite 32 hex digits)."""

    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="(%(expressions)s)::text", **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        parts = [f"substr({sql}, {start}, {length})" for start, length in _UUID_GROUPS]
        return "(" + " || '-' || ".join(parts) + ")", list(params) * len(parts)


_UUID_GROUPS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))


class TimeText(Func):
    """A time column as ``datetime.isoformat()`` writes the UTC time Django reads from it."""

    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = (
            "(replace(to_char((%(expressions)s) AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || '+00:00')"
        )
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django stores str(naive UTC time): "2026-11-30 20:25:24.661833", no fraction when zero.
        return self.as_sql(
            compiler, connection, template="(replace(%(expressions)s, ' ', 'T') || '+00:00')", **extra
        )


class SchemaTimeText(Func):
    """A time column as the schema answers write it (Django's JSON encoder): UTC, milliseconds
    (cut, not rounded; none when the time is on the second) and ``Z``: ``2026-11-30T20:25:24.661Z``."""

    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        text = "to_char((%(expressions)s) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
        template = (
            f"(CASE WHEN right({text}, 7) = '.000000' THEN left({text}, 19) ELSE left({text}, 23) END || 'Z')"
        )
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Stored as str(naive UTC time): no fraction when it is zero.
        return self.as_sql(
            compiler,
            connection,
            template="(substr(replace(%(expressions)s, ' ', 'T'), 1, 23) || 'Z')",
            **extra,
        )


class JsonObject(Func):
    """An answer's object as JSON text, written by the database from ``fields`` (name -> column, in
    the answer's order): a page of rows is then a page of texts joined, not values read one by one,
    put in dicts and encoded again. The same JSON as the dicts' (PostgreSQL's own spacing, and text
    outside ASCII as UTF-8 rather than escaped, as JSON allows)."""

    output_field = TextField()

    def __init__(self, fields: dict[str, Any]) -> None:
        for name in fields:
            if not _NAME.fullmatch(name):
                raise ValueError(f"not a field name: {name!r}")
        self.names = tuple(fields)
        super().__init__(*fields.values())

    def _pairs(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        for name, expression in zip(self.names, self.source_expressions, strict=True):
            sql, more = compiler.compile(expression)
            parts.append(f"'{name}', {sql}")
            params.extend(more)
        return ", ".join(parts), params

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        pairs, params = self._pairs(compiler, connection)
        return f"(json_build_object({pairs}))::text", params

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        pairs, params = self._pairs(compiler, connection)
        return f"json_object({pairs})", params


_NAME = re.compile(r"[a-z_]+")


def uuid_text_sql(sql: str, vendor: str) -> str:
    """The SQL of UuidText around the column ``sql``, for SQL written out (see ``ProfileJson``)."""
    if vendor == "postgresql":
        return f"({sql})::text"
    return "(" + " || '-' || ".join(f"substr({sql}, {s}, {n})" for s, n in _UUID_GROUPS) + ")"


class JsonBool(Func):
    """A boolean column as a JSON true or false inside ``JsonObject`` (SQLite stores 1 or 0)."""

    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return compiler.compile(self.source_expressions[0])

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="json(CASE WHEN %(expressions)s THEN 'true' ELSE 'false' END)",
            **extra,
        )


class JsonTexts(Func):
    """A JSON array column as a JSON array of its items as text (an empty one when it is not an array)."""

    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = (
            "(SELECT coalesce(json_agg(CASE WHEN jsonb_typeof(item) = 'string' THEN item #>> '{}' "
            "ELSE item::text END ORDER BY n), '[]'::json) FROM jsonb_array_elements(CASE WHEN "
            "jsonb_typeof(%(expressions)s) = 'array' THEN %(expressions)s ELSE '[]'::jsonb END) "
            "WITH ORDINALITY AS items(item, n))"
        )
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = (
            "json((SELECT json_group_array(CAST(value AS TEXT)) FROM json_each(CASE WHEN "
            "json_type(%(expressions)s) = 'array' THEN %(expressions)s ELSE '[]' END)))"
        )
        return self.as_sql(compiler, connection, template=template, **extra)

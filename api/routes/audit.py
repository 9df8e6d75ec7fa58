"""Audit events, with the same visibility rules as the audit log page."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db.models import Func, IntegerField, JSONField, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Query, Router

from api import paging, render
from api.auth import needs
from api.columns import JsonObject, TimeText, UuidText
from api.common import ERRORS, user
from api.schemas import AuditEventOut, AuditPage, Input
from portal import access
from portal.lib.shapes import Shapes
from portal.models import AuditEvent

router = Router(tags=["Audit"])

COLUMNS = (
    "code",
    "occurred_at",
    "actor_type",
    "actor_name",
    "activity",
    "operation",
    "category",
    "result",
    "correlation_id",
)
# The columns of COLUMNS as the database reads them for an answer: UUIDs and times as their text.
VALUES: tuple[Any, ...] = tuple(
    UuidText(c) if c in ("code", "correlation_id") else TimeText(c) if c == "occurred_at" else c
    for c in COLUMNS
)
# A list shows each event's first resources only: an import's event names every certificate of a
# chunk, and a page of such events would be megabytes.
SHOWN = 3


class JsonArrayLength(Func):
    function = "jsonb_array_length"
    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="json_array_length", **extra)


class FirstObjects(Func):
    """The objects among a JSON array column's first SHOWN items, as a JSON array (in order)."""

    output_field = JSONField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = (
            "(SELECT coalesce(jsonb_agg(item ORDER BY n), '[]'::jsonb) "
            "FROM jsonb_array_elements(%(expressions)s) WITH ORDINALITY AS shown(item, n) "
            f"WHERE n <= {SHOWN} AND jsonb_typeof(item) = 'object')"
        )
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # json() outside the subquery: a subquery's value is plain text to json_object().
        template = (
            "json((SELECT json_group_array(json(value)) FROM (SELECT value FROM json_each(%(expressions)s) "
            f"WHERE key < {SHOWN} AND type = 'object' ORDER BY key)))"
        )
        return self.as_sql(compiler, connection, template=template, **extra)


class ZeroIfNull(Func):
    function = "coalesce"
    template = "%(function)s(%(expressions)s, 0)"
    output_field = IntegerField()


LISTING = paging.listing(
    AuditEvent.objects.all(),
    [
        JsonObject(
            {
                **dict(zip(COLUMNS, VALUES, strict=True)),
                "resources": FirstObjects("resources"),
                "resource_count": ZeroIfNull(JsonArrayLength("resources")),
            }
        )
    ],
    descending=True,
)
SHAPES = Shapes("api.audit-events")


class AuditFilters(Input):
    category: str | None = None
    activity: str | None = None
    actor: str | None = None
    result: AuditEvent.Result | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: paging.Cursor = None
    limit: paging.Limit = paging.DEFAULT_LIMIT


@router.get(
    "/audit-events",
    response={200: AuditPage, **ERRORS},
    summary="List audit events",
    auth=needs("audit.read"),
)
def audit_list(request: HttpRequest, filters: Query[AuditFilters]) -> HttpResponse:
    """Newest first. ``actor`` matches part of the actor's name (an API token shows as its admin's
    e-mail and the token's name)."""
    admin = user(request)
    values: dict[str, Any] = {}
    for name in ("category", "activity", "actor", "result", "since", "until"):
        value = getattr(filters, name)
        if value:
            values[name] = str(value) if name == "result" else value

    def build(v: Mapping[str, Any]) -> QuerySet[Any]:
        rows = access.audit_events(LISTING.all(), admin)
        if "category" in v:
            rows = rows.filter(category=v["category"])
        if "activity" in v:
            rows = rows.filter(activity__icontains=v["activity"])
        if "actor" in v:
            rows = rows.filter(actor_name__icontains=v["actor"])
        if "result" in v:
            rows = rows.filter(result=v["result"])
        if "since" in v:
            rows = rows.filter(occurred_at__gte=v["since"])
        if "until" in v:
            rows = rows.filter(occurred_at__lt=v["until"])
        return rows

    key = access.viewer_key(admin)

    def answer() -> str:
        found, cursor = paging.page_shaped(
            SHAPES, key, build, values, filters.cursor, filters.limit, descending=True
        )
        return render.page_text([row[0] for row in found], cursor)

    return render.kept_json(request, "audit-events", answer)


@router.get(
    "/audit-events/{code}",
    response={200: AuditEventOut, **ERRORS},
    summary="Get an audit event with all its resources",
    auth=needs("audit.read"),
)
def audit_get(request: HttpRequest, code: uuid.UUID) -> HttpResponse:
    rows = access.audit_events(AuditEvent.objects.filter(code=code), user(request))
    found = rows.values_list(*VALUES, "resources").first()
    if found is None:
        raise Http404
    item = dict(zip(COLUMNS, found[:-1], strict=True))
    resources = [r for r in found[-1] if isinstance(r, dict)]
    return render.json_answer({**item, "resources": resources, "resource_count": len(resources)})

"""Audit events, with the same visibility rules as the audit log page."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema

from api import paging, render
from api.auth import needs
from api.common import ERRORS, user
from api.schemas import AuditEventOut, AuditPage
from portal import access
from portal.models import AuditEvent

router = Router(tags=["Audit"])


class AuditFilters(Schema):
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
    rows = access.audit_events(AuditEvent.objects.all(), admin)
    if filters.category:
        rows = rows.filter(category=filters.category)
    if filters.activity:
        rows = rows.filter(activity__icontains=filters.activity)
    if filters.actor:
        rows = rows.filter(actor_name__icontains=filters.actor)
    if filters.result:
        rows = rows.filter(result=filters.result)
    if filters.since:
        rows = rows.filter(occurred_at__gte=filters.since)
    if filters.until:
        rows = rows.filter(occurred_at__lt=filters.until)
    names = list(AuditEventOut.model_fields)
    found, cursor = paging.page_values(rows, filters.cursor, filters.limit, names, descending=True)
    items = render.rows(names, found)
    for item in items:
        item["resources"] = [r for r in item["resources"] if isinstance(r, dict)]
    return render.json_answer({"items": items, "next_cursor": cursor})

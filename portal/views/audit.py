from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from portal import access
from portal.access import permission_required
from portal.forms import AuditFilterForm
from portal.http import AuthenticatedHttpRequest
from portal.lib.spreadsheet import csv_download
from portal.models import AuditEvent

PAGE_SIZE = 50


@require_GET
@permission_required("audit.read")
def audit_logs(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    events = access.audit_events(AuditEvent.objects.all(), request.user)
    if form.is_bound:
        if not form.is_valid():
            return render(
                request, "portal/audit_logs.html", {"form": form, "nav_active": "tenant"}, status=400
            )
        events = form.filter(events)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    template = "portal/audit_logs.html#results" if request.htmx else "portal/audit_logs.html"
    return render(
        request, template, {"form": form, "page": page, "query": query.urlencode(), "nav_active": "tenant"}
    )


@require_GET
@permission_required("audit.read")
def audit_detail(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    event = get_object_or_404(access.audit_events(AuditEvent.objects.all(), request.user), code=code)
    return render(request, "portal/audit_detail.html", {"event": event, "nav_active": "tenant"})


@require_GET
@permission_required("audit.read")
def audit_export(request: AuthenticatedHttpRequest) -> StreamingHttpResponse | HttpResponse:
    form = AuditFilterForm(request.GET or None)
    events = access.audit_events(AuditEvent.objects.all(), request.user)
    if form.is_bound:
        if not form.is_valid():
            return HttpResponseBadRequest(
                "Invalid filters: " + "; ".join(str(e) for e in form.errors.values())
            )
        events = form.filter(events)
    header = [
        "Date (UTC)",
        "Activity",
        "Operation",
        "Category",
        "Result",
        "Initiated by",
        "Actor type",
        "IP address",
        "Correlation id",
        "Resources",
    ]
    rows = (
        [
            e.occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            e.activity,
            e.operation,
            e.category,
            e.result,
            e.actor_name,
            e.actor_type,
            e.actor_ip or "",
            e.correlation_id,
            json.dumps(e.resources),
        ]
        for e in events.iterator(chunk_size=500)
    )
    return csv_download("audit-logs.csv", header, rows)

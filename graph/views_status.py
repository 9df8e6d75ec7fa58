"""Tenant administration > Microsoft Intune > Device status from Intune: the status sync's runs and
the button that starts one."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from graph import status_sync as service
from graph.models import StatusSyncRun, TenantConnection
from portal import access
from portal.access import permission_required
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest


@require_GET
@permission_required("profiles.read")
def status_sync(request: AuthenticatedHttpRequest) -> HttpResponse:
    context = {
        "runs": StatusSyncRun.objects.all()[:20],
        "last_sync": service.last_sync(),
        "connection": TenantConnection.current(),
        "can_sync": access.has_perm(request.user, "profiles.update"),
        "nav_active": "tenant",
    }
    template = "graph/status_sync.html#runs" if request.htmx else "graph/status_sync.html"
    return render(request, template, context)


@require_POST
@permission_required("profiles.update")
def status_sync_start(request: AuthenticatedHttpRequest) -> HttpResponse:
    _, started = service.start(Actor.from_request(request))
    if started:
        messages.success(request, "Status sync from Intune started.")
    else:
        messages.info(request, "A status sync from Intune is already running.")
    return redirect("graph:status_sync")

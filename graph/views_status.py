"""Tenant administration > Microsoft Intune > Device status from Intune: the status sync's runs and
the button that starts one."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from graph import run_pages
from graph import status_sync as service
from graph.models import StatusSyncRun
from portal.access import permission_required
from portal.http import AuthenticatedHttpRequest


@require_GET
@permission_required("profiles.read")
def status_sync(request: AuthenticatedHttpRequest) -> HttpResponse:
    return run_pages.runs_page(
        request,
        "graph/status_sync.html",
        StatusSyncRun.objects.all(),
        update_permission="profiles.update",
        last_sync=service.last_sync(),
    )


@require_POST
@permission_required("profiles.update")
def status_sync_start(request: AuthenticatedHttpRequest) -> HttpResponse:
    run_pages.start_run(
        request,
        service.start,
        started="Status sync from Intune started.",
        running="A status sync from Intune is already running.",
    )
    return redirect("graph:status_sync")

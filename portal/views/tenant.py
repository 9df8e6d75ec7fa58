from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from portal.http import AuthenticatedHttpRequest
from portal.navigation import tenant_admin_tiles


@require_GET
def tenant_admin(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(
        request,
        "portal/tenant_admin.html",
        {"nav_active": "tenant", "tiles": tenant_admin_tiles(request.user)},
    )

from __future__ import annotations

from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from directory.models import DirectoryUser
from portal import access
from portal.access import permission_required
from portal.http import AuthenticatedHttpRequest
from portal.navigation import tenant_admin_tiles


@require_GET
def tenant_admin(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(
        request,
        "portal/tenant_admin.html",
        {"nav_active": "tenant", "tiles": tenant_admin_tiles(request.user)},
    )


@require_GET
@permission_required("directory.read")
def troubleshoot(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Help desk entry point: find one user, then open everything known about them."""
    query = request.GET.get("q", "").strip()[:200]
    matches: list[DirectoryUser] = []
    if query:
        found = DirectoryUser.objects.filter(
            Q(upn__icontains=query) | Q(display_name__icontains=query) | Q(mail__icontains=query)
        )
        matches = list(found[:25])
        if len(matches) == 1:
            return redirect("directory:user", object_id=matches[0].object_id)
    return render(
        request,
        "portal/troubleshoot.html",
        {
            "nav_active": "troubleshoot",
            "query": query,
            "matches": matches,
            "can_audit": access.has_perm(request.user, "audit.read"),
        },
    )

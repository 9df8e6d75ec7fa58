from __future__ import annotations

import time

from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from portal import access, summaries
from portal.home import rendered_home_sections
from portal.http import AuthenticatedHttpRequest
from portal.models import AuditEvent
from portal.tasks import HEARTBEAT_KEY

# A worker heartbeat older than this means no worker (or no beat) is running.
_WORKER_STALE_AFTER = 120


@require_GET
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    page: dict[str, object] = {"nav_active": "home"}
    # Certificates, uploads, the directory and connectors: each app registers its own (portal/home.py).
    context = page | {"worker": _worker_status(), "home_sections": rendered_home_sections(request, page)}
    if access.has_perm(user, "audit.read"):

        def recent() -> str:
            # Changes people made; uploads and syncs by the system have their own pages.
            by_people = AuditEvent.objects.filter(actor_type=AuditEvent.ActorType.USER)
            events = access.audit_events(by_people, user)[:8]
            return render_to_string("portal/home.html#recent", {"recent_events": events})

        context["recent"] = summaries.fragment(request, "home:recent", recent)
    return render(request, "portal/home.html", context)


def _worker_status() -> dict[str, object]:
    beat = cache.get(HEARTBEAT_KEY)
    if not beat:
        return {"state": "unknown", "label": "No heartbeat yet"}
    age = int(time.time() - float(beat["at"]))
    if age > _WORKER_STALE_AFTER:
        return {"state": "down", "label": f"Last heartbeat {age} s ago", "age": age}
    return {"state": "up", "label": f"Running (heartbeat {age} s ago)", "age": age}


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and docker-compose: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from portal import access, summaries
from portal.home import live_home_sections, rendered_home_sections
from portal.http import AuthenticatedHttpRequest
from portal.models import AuditEvent
from portal.tasks import HEARTBEAT_KEY

# A worker heartbeat older than this means no worker (or no beat) is running.
_WORKER_STALE_AFTER = 120


@require_GET
def home(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    page: dict[str, object] = {"nav_active": "home"}
    # What moves with time (a heartbeat's age, connectors falling silent) is filled in on each view.
    live = live_home_sections(request, page) | {"worker": lambda: _worker_piece(**_worker_status())}

    def context() -> dict[str, object]:
        # Certificates, uploads, the directory and connectors: each app registers its own (portal/home.py).
        found = page | {"home_sections": rendered_home_sections(request, page)}
        if access.has_perm(request.user, "audit.read"):
            # Changes people made; uploads and syncs by the system have their own pages.
            by_people = AuditEvent.objects.filter(actor_type=AuditEvent.ActorType.USER)
            events = access.audit_events(by_people, request.user)[:8]
            found["recent"] = render_to_string("portal/home.html#recent", {"recent_events": events})
        return found

    # Kept whole for every admin of the same scope until something changes (portal.summaries.page).
    return summaries.page(request, "portal/home.html", context, params=(), live=live)


# The heartbeat as last read, and when: read at most once a second per process (workers beat far
# less often), so a kept Home costs no cache round trip on most views.
_BEAT_READ_EVERY = 1.0
_beat_read: tuple[float, Any] = (-_BEAT_READ_EVERY, None)


def _beat() -> Any:
    global _beat_read
    read_at, beat = _beat_read
    now = time.monotonic()
    if now - read_at >= _BEAT_READ_EVERY:
        beat = cache.get(HEARTBEAT_KEY)
        _beat_read = (now, beat)
    return beat


@lru_cache(maxsize=256)  # one per state and age in seconds
def _worker_piece(state: str, label: str, age: int | None = None) -> str:
    return render_to_string(
        "portal/home.html#worker", {"worker": {"state": state, "label": label, "age": age}}
    )


def _worker_status() -> dict[str, Any]:
    beat = _beat()
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

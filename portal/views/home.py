from __future__ import annotations

import time

from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from certs.models import Certificate, GraphState
from certs.reports import expiry_summary
from connectors import health as connector_health
from connectors.models import Connector
from directory.models import Device, DirectoryUser, Group
from portal import access, summaries
from portal.access import AnyUser
from portal.http import AuthenticatedHttpRequest
from portal.models import AuditEvent
from portal.tasks import HEARTBEAT_KEY

# A worker heartbeat older than this means no worker (or no beat) is running.
_WORKER_STALE_AFTER = 120


@require_GET
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    context: dict[str, object] = {"nav_active": "home", "worker": _worker_status()}
    # Whole-table counts are shared by the admins who see the same objects (portal.summaries).
    clock = summaries.change_clock()
    if access.has_perm(user, "directory.read"):
        context["counts"] = summaries.kept("home:directory", clock, _directory_counts)
    context["connector_health"] = connector_health.summary_for(user)
    context["reads_all_connectors"] = access.reads_all(user, Connector)
    if access.has_perm(user, "certificates.read"):
        certificates = summaries.kept(
            f"home:certificates:{_certificate_scope(user)}", clock, lambda: _certificate_counts(user)
        )
        context["expiry"] = certificates["expiry"]
        context["failed_uploads"] = certificates["failed_uploads"]
    else:
        context["expiry"] = None
    if access.has_perm(user, "audit.read"):
        # Changes people made; uploads and syncs by the system have their own pages.
        by_people = AuditEvent.objects.filter(actor_type=AuditEvent.ActorType.USER)
        context["recent_events"] = access.audit_events(by_people, user)[:8]
    return render(request, "portal/home.html", context)


def _directory_counts() -> dict[str, int]:
    return {
        "users": DirectoryUser.objects.filter(removed_at=None).count(),
        "groups": Group.objects.filter(removed_at=None).count(),
        "devices": Device.objects.filter(removed_at=None).count(),
    }


def _certificate_scope(user: AnyUser) -> str:
    """Names the certificates ``user`` reads: admins with the same name see the same ones."""
    if access.reads_all(user, Certificate):
        return "all"
    tag_ids = access.grant(user, "certificates.read").tag_ids or frozenset()
    return "tags:" + ",".join(str(pk) for pk in sorted(tag_ids))


def _certificate_counts(user: AnyUser) -> dict[str, object]:
    failed = access.scoped(Certificate.objects.filter(graph_state=GraphState.FAILED), user)
    return {"expiry": expiry_summary(user), "failed_uploads": failed.count()}


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

"""The certificates app's sections of Home (registered in CertsConfig.ready(), see portal/home.py)."""

from __future__ import annotations

from typing import Any

from certs.models import Certificate, GraphState
from certs.reports import expiry_summary
from portal import access
from portal.http import AuthenticatedHttpRequest


def expiry_section(request: AuthenticatedHttpRequest) -> dict[str, Any] | None:
    return {"expiry": expiry_summary(request.user)}


def failed_uploads_section(request: AuthenticatedHttpRequest) -> dict[str, Any] | None:
    user = request.user
    if not access.has_perm(user, "certificates.read"):
        return None
    failed = Certificate.objects.filter(graph_state=GraphState.FAILED)
    return {"failed_uploads": access.scoped(failed, user).count()}

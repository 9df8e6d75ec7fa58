"""The certificates app's sections of Home (registered in CertsConfig.ready(), see portal/home.py).

Their counts run over the whole certificate table, so they are kept between views
(``portal.summaries``) under a key naming the certificates the admin reads.
"""

from __future__ import annotations

from typing import Any

from certs.models import Certificate, GraphState
from certs.reports import expiry_summary
from portal import access, summaries
from portal.access import AnyUser
from portal.http import AuthenticatedHttpRequest


def _certificate_scope(user: AnyUser) -> str:
    """Names the certificates ``user`` reads: admins with the same name see the same ones."""
    if access.reads_all(user, Certificate):
        return "all"
    tag_ids = access.grant(user, "certificates.read").tag_ids or frozenset()
    return "tags:" + ",".join(str(pk) for pk in sorted(tag_ids))


def _certificate_counts(user: AnyUser) -> dict[str, Any]:
    failed = access.scoped(Certificate.objects.filter(graph_state=GraphState.FAILED), user)
    return {"expiry": expiry_summary(user), "failed_uploads": failed.count()}


def _counts(request: AuthenticatedHttpRequest) -> dict[str, Any] | None:
    user = request.user
    if not access.has_perm(user, "certificates.read"):
        return None
    key = f"home:certificates:{_certificate_scope(user)}"
    return summaries.kept_for(request, key, lambda: _certificate_counts(user))


def expiry_section(request: AuthenticatedHttpRequest) -> dict[str, Any] | None:
    counts = _counts(request)
    return {"expiry": counts["expiry"] if counts else None}


def failed_uploads_section(request: AuthenticatedHttpRequest) -> dict[str, Any] | None:
    counts = _counts(request)
    return None if counts is None else {"failed_uploads": counts["failed_uploads"]}

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from portal import access
from portal.models import User

# Pages an admin who still has to enrol an authenticator may reach.
_MFA_EXEMPT_PREFIXES = ("/accounts/", "/static/", "/healthz", "/connector-api/", "/device-api/")


class CorrelationIdMiddleware:
    """Give every request an id that ties its audit events and log lines together."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.headers.get("client-request-id", "")
        try:
            correlation_id = uuid.UUID(raw)
        except ValueError:
            correlation_id = uuid.uuid4()
        request.correlation_id = correlation_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["request-id"] = str(correlation_id)
        return response


class RequireMfaMiddleware:
    """Send admins whose role requires MFA to the authenticator set-up until they have one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            settings.PORTAL_ENFORCE_MFA
            and isinstance(user, User)
            and user.is_authenticated
            and not request.path.startswith(_MFA_EXEMPT_PREFIXES)
            and access.requires_mfa(user)
            and not _has_totp(user)
        ):
            return HttpResponseRedirect(f"{reverse('mfa_activate_totp')}?required=1")
        return self.get_response(request)


def _has_totp(user: User) -> bool:
    primed: bool | None = getattr(user, "_portal_has_totp", None)  # read with the admin (portal.backends)
    if primed is not None:
        return primed
    from allauth.mfa.models import Authenticator

    # Written out: it runs on every request of an admin whose role requires MFA, and building it
    # through the ORM costs several times what running it does.
    q = connection.ops.quote_name
    table = q(Authenticator._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {table} WHERE {q('user_id')} = %s AND {q('type')} = %s LIMIT 1",
            [user.pk, str(Authenticator.Type.TOTP)],
        )
        return cursor.fetchone() is not None

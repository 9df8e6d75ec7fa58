from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.handlers.exception import convert_exception_to_response
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.urls import get_resolver, get_urlconf, reverse

from portal import access
from portal.models import User

API_PREFIX = "/api/v1/"

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


class ApiCallMiddleware:
    """API calls skip the middleware only the pages use.

    A call to ``/api/v1/`` that carries an ``Authorization`` header is authenticated by its token on
    every call and never reads a session, a CSRF token, messages, htmx headers or the signed-in
    admin: resolving and running it here saves that middleware's work on the busiest requests.
    What every answer gets from the rest still applies: the host is checked against ALLOWED_HOSTS
    and the common checks run (CommonMiddleware), and X-Frame-Options is set. The documentation
    pages and calls without a token go through the whole stack.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._common = CommonMiddleware(get_response)
        self._frames = XFrameOptionsMiddleware(get_response)
        self._call: Callable[[HttpRequest], Any] = convert_exception_to_response(self._run)

    def __call__(self, request: HttpRequest) -> Any:
        if not request.path_info.startswith(API_PREFIX) or "HTTP_AUTHORIZATION" not in request.META:
            return self.get_response(request)
        response: Any = self._common.process_response(request, self._call(request))
        return self._frames.process_response(request, response)

    def _run(self, request: HttpRequest) -> HttpResponse:
        request.user = AnonymousUser()  # until the call's token names its admin
        refused = self._common.process_request(request)  # checks the host, may redirect
        if refused is not None:
            return refused
        match = get_resolver(get_urlconf()).resolve(request.path_info)
        request.resolver_match = match
        response: HttpResponse = match.func(request, *match.args, **match.kwargs)
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

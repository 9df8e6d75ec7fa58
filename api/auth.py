"""Who is calling the API: an admin's API token, or a trusted Entra ID application's token.

Either way the call acts as the admin (their roles and scope tags, read on every call, so a
role removed or an account disabled applies at once); ``request.api_actor`` names the token
or application as the means in every audit event. Each caller is rate limited.
"""

from __future__ import annotations

import ssl
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from api import tokens
from api.common import prepare_upload
from api.models import EntraApplication
from portal import access, rbac
from portal.audit import Actor
from portal.models import AuditEvent, User


class Unauthenticated(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("rate limited")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Caller:
    user: User
    key: str  # what the rate limit counts by
    actor: Actor


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _correlation(request: HttpRequest) -> uuid.UUID:
    return getattr(request, "correlation_id", None) or uuid.uuid4()


def _token_caller(request: HttpRequest, secret: str) -> Caller:
    token = tokens.token_for_secret(secret)
    if token is None:
        raise Unauthenticated("invalid_token", "The token is unknown, revoked or expired.")
    tokens.mark_used(token)
    actor = Actor(
        user=token.user,
        name=f"{token.user.email} (API token {token.name})",
        ip=_client_ip(request),
        correlation_id=_correlation(request),
    )
    return Caller(token.user, f"token:{token.code}", actor)


@lru_cache(maxsize=4)
def _jwks(url: str, ca_file: str) -> jwt.PyJWKClient:
    context = ssl.create_default_context(cafile=ca_file or None)
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=10, ssl_context=context)


def entra_issuer() -> str:
    return f"{settings.ENTRA_LOGIN_URL.rstrip('/')}/{settings.ENTRA_TENANT_ID}/v2.0"


def _entra_caller(request: HttpRequest, raw: str) -> Caller:
    if not settings.ENTRA_TENANT_ID or not settings.API_ENTRA_AUDIENCE:
        raise Unauthenticated("entra_not_configured", "Entra ID application tokens are not accepted here.")
    jwks_url = f"{settings.ENTRA_LOGIN_URL.rstrip('/')}/{settings.ENTRA_TENANT_ID}/discovery/v2.0/keys"
    try:
        key = _jwks(jwks_url, settings.API_ENTRA_CA_FILE).get_signing_key_from_jwt(raw)
        claims: dict[str, Any] = jwt.decode(
            raw,
            key.key,
            algorithms=["RS256"],
            audience=settings.API_ENTRA_AUDIENCE,
            issuer=entra_issuer(),
            options={"require": ["exp", "iat", "aud", "iss", "tid"]},
        )
    except (jwt.PyJWTError, OSError) as exc:
        raise Unauthenticated("invalid_token", "The Entra ID token is not valid for this portal.") from exc
    if claims.get("tid") != settings.ENTRA_TENANT_ID or "scp" in claims:
        # A delegated (user) token is not an application token.
        raise Unauthenticated("invalid_token", "Only application tokens of this tenant are accepted.")
    client_id = _guid(claims.get("azp") or claims.get("appid"))
    app = (
        None
        if client_id is None
        else (
            EntraApplication.objects.select_related("user")
            .filter(client_id=client_id, revoked_at__isnull=True)
            .first()
        )
    )
    if app is None or not app.user.is_active:
        raise Unauthenticated(
            "application_not_trusted", "This Entra ID application is not trusted by the portal."
        )
    actor = Actor(
        user=app.user,
        name=f"{app.name} (Entra ID application {app.client_id}, for {app.user.email})",
        type=AuditEvent.ActorType.APPLICATION,
        ip=_client_ip(request),
        correlation_id=_correlation(request),
    )
    return Caller(app.user, f"app:{app.code}", actor)


def _guid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _rate_limit(key: str) -> None:
    """A fixed window per caller, counted in the shared cache so every web process sees it."""
    window = int(settings.API_RATE_WINDOW_SECONDS)
    now = time.time()
    start = int(now // window) * window
    bucket = f"api-rate:{key}:{start}"
    in_window = getattr(cache, "count_in_window", None)  # the Redis cache: one round trip
    count = in_window(bucket, window + 5) if in_window is not None else _count(bucket, window)
    if count > int(settings.API_RATE_LIMIT):
        raise RateLimited(max(1, int(start + window - now) + 1))


def _count(bucket: str, window: int) -> int:
    try:
        count = cache.incr(bucket)  # one round trip for every call but a window's first
    except ValueError:  # the window's first call, or two at once
        count = 1 if cache.add(bucket, 1, timeout=window + 5) else cache.incr(bucket)
    return int(count)


class ApiAuth(HttpBearer):
    """The bearer token of every API call (``Authorization: Bearer <token>``)."""

    openapi_scheme = "bearer"

    def __init__(self, permission: str | None = None) -> None:
        super().__init__()
        if permission is not None and permission not in rbac.ALL_PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")
        self.permission = permission

    def __call__(self, request: HttpRequest) -> Any:
        # Not HttpBearer's own: it logs a malformed header, which may hold a secret.
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("not_authenticated", "Send an API token: Authorization: Bearer <token>.")
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        token = token.strip()
        caller = _entra_caller(request, token) if token.count(".") == 2 else _token_caller(request, token)
        _rate_limit(caller.key)
        # Checked before the body is read: a caller without the permission learns nothing more.
        if self.permission is not None and not access.has_perm(caller.user, self.permission):
            raise PermissionDenied
        prepare_upload(request)
        request.user = caller.user
        request.api_actor = caller.actor  # type: ignore[attr-defined]
        request.api_called_at = timezone.now()  # type: ignore[attr-defined]
        return caller


def needs(permission: str) -> ApiAuth:
    """The authentication of a route that needs ``permission`` (on some object; the route checks which)."""
    return ApiAuth(permission)


def actor(request: HttpRequest) -> Actor:
    found: Actor = request.api_actor  # type: ignore[attr-defined]
    return found

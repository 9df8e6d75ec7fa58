"""API tokens and trusted Entra ID applications: created, revoked and checked here, each change audited."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api.models import ApiToken, EntraApplication
from portal import audit
from portal.audit import Actor
from portal.backends import signed_in
from portal.lib import lean
from portal.lib.refusal import Refused
from portal.lib.tokens import hash_secret
from portal.models import AuditEvent, User

CATEGORY = "Automation"
# Every token starts with this, so a leaked one is easy to recognise (and to scan for).
TOKEN_PREFIX = "pfxp_"


def max_days() -> int:
    return int(settings.API_TOKEN_MAX_DAYS)


@transaction.atomic
def token_create(actor: Actor, *, user: User, name: str, days: int) -> tuple[ApiToken, str]:
    """A new token for ``user`` and its secret, which is returned here once and never stored."""
    name = " ".join(name.split())
    if not name:
        raise Refused("name_required", "Give the token a name.", field="name")
    if not 1 <= days <= max_days():
        raise Refused("bad_expiry", f"A token lasts from 1 to {max_days()} days.", field="days")
    if ApiToken.objects.filter(user=user, name=name).exists():
        raise Refused("duplicate_token_name", "You already have a token with this name.", field="name")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        secret_hash=hash_secret(secret),
        expires_at=timezone.now() + timedelta(days=days),
    )
    audit.record(
        actor,
        activity="Create API token",
        category=CATEGORY,
        operation=AuditEvent.Operation.CREATE,
        resources=[
            audit.resource(
                token,
                type="API token",
                id=str(token.code),
                name=f"{token.name} ({user.email})",
                changes=[{"field": "expires_at", "old": None, "new": token.expires_at.isoformat()}],
            )
        ],
    )
    return token, secret


@transaction.atomic
def token_revoke(actor: Actor, *, token: ApiToken) -> ApiToken:
    locked = ApiToken.objects.select_for_update().get(pk=token.pk)
    if locked.revoked_at is not None:
        raise Refused("already_revoked", "This token has already been revoked.")
    locked.revoked_at = timezone.now()
    locked.save(update_fields=["revoked_at"])
    audit.record(
        actor,
        activity="Revoke API token",
        category=CATEGORY,
        operation=AuditEvent.Operation.UPDATE,
        resources=[
            audit.resource(
                locked,
                type="API token",
                id=str(locked.code),
                name=f"{locked.name} ({locked.user.email})",
                changes=[{"field": "revoked_at", "old": None, "new": locked.revoked_at.isoformat()}],
            )
        ],
    )
    return locked


# Every API call reads the token, in a query built once, then its admin as a page does
# (``portal.backends.signed_in``: role assignments and the change clock in the same statement).
_BY_SECRET = lean.Query(lambda secret_hash: ApiToken.objects.filter(secret_hash=secret_hash).order_by(), str)


def token_for_secret(secret: str) -> ApiToken | None:
    """The usable token with this secret: not revoked, not expired, its admin still active."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = _BY_SECRET.first(hash_secret(secret))
    if token is None or token.revoked_at is not None or token.expires_at <= timezone.now():
        return None
    admin = signed_in(token.user_id)
    if admin is None or not admin.is_active:
        return None
    token.user = admin
    return token


def mark_used(token: ApiToken) -> None:
    """Record when a token was last used, at most once a minute (no write on every call)."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)


@transaction.atomic
def application_add(actor: Actor, *, user: User, name: str, client_id: str) -> EntraApplication:
    name = " ".join(name.split())
    if not name:
        raise Refused("name_required", "Give the application a name.", field="name")
    try:
        parsed = uuid.UUID(client_id.strip())
    except ValueError as exc:
        raise Refused("bad_client_id", "The application (client) ID is a GUID.", field="client_id") from exc
    if EntraApplication.objects.filter(client_id=parsed).exists():
        raise Refused("duplicate_application", "This application is already trusted.", field="client_id")
    app = EntraApplication.objects.create(user=user, name=name[:100], client_id=parsed)
    audit.record(
        actor,
        activity="Trust Entra ID application for the API",
        category=CATEGORY,
        operation=AuditEvent.Operation.CREATE,
        resources=[
            audit.resource(
                app,
                type="Entra ID application",
                id=str(app.client_id),
                name=f"{app.name} ({user.email})",
                changes=[{"field": "client_id", "old": None, "new": str(app.client_id)}],
            )
        ],
    )
    return app


@transaction.atomic
def application_revoke(actor: Actor, *, application: EntraApplication) -> None:
    locked = EntraApplication.objects.select_for_update().get(pk=application.pk)
    if locked.revoked_at is not None:
        raise Refused("already_revoked", "This application is no longer trusted.")
    locked.revoked_at = timezone.now()
    locked.save(update_fields=["revoked_at"])
    audit.record(
        actor,
        activity="Stop trusting Entra ID application for the API",
        category=CATEGORY,
        operation=AuditEvent.Operation.UPDATE,
        resources=[
            audit.resource(
                locked,
                type="Entra ID application",
                id=str(locked.client_id),
                name=locked.name,
                changes=[{"field": "revoked_at", "old": None, "new": locked.revoked_at.isoformat()}],
            )
        ],
    )

"""A connector's trust, from enrolment to revocation.

An admin creates a one-time enrolment token; the agent trades it for a connector
and a credential (only its hash is stored); every API call presents the
credential; the admin may rename, disable, enable, revoke or delete the
connector. Each change is atomic and writes its audit row in the same
transaction; changes the agent makes are audited as the connector.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from connectors import health, rotation
from connectors.events import CATEGORY, connector_actor, record_event
from connectors.models import FEATURES, Connector, ConnectorEvent, EnrollmentToken
from portal import audit
from portal.audit import Actor
from portal.lib import refusal, tokens
from portal.lib.refusal import Refused
from portal.lib.tokens import hash_secret
from portal.models import ScopeTag

TOKEN_PREFIX = "pfxe_"
CREDENTIAL_PREFIX = "pfxc_"
DEFAULT_TOKEN_TTL = timedelta(hours=24)


@transaction.atomic
def token_create(
    actor: Actor, *, name: str, tags: Iterable[ScopeTag] = (), ttl: timedelta = DEFAULT_TOKEN_TTL
) -> tuple[EnrollmentToken, str]:
    """A one-time enrolment token. The secret is returned here once and never stored."""
    secret = tokens.new(TOKEN_PREFIX)
    token = EnrollmentToken(
        token_hash=hash_secret(secret),
        hint=tokens.hint(secret, TOKEN_PREFIX),
        name=name.strip()[:100],
        created_by=actor.user,
        created_by_name=actor.name,
        expires_at=timezone.now() + ttl,
    )
    refusal.full_clean(token)
    token.save()
    token.scope_tags.set(list(tags) or [ScopeTag.default()])
    audit.record(
        actor,
        activity="Create connector enrollment token",
        category=CATEGORY,
        operation="create",
        resources=[audit.resource(token, type="Enrollment token", name=f"{token.hint}… for {token.name}")],
    )
    return token, secret


@transaction.atomic
def token_cancel(actor: Actor, token: EnrollmentToken) -> None:
    """Withdraw an unused enrolment token (say, it was pasted somewhere it should not be)."""
    if token.used_at is not None:
        raise Refused("token_used", "This token has already enrolled a connector.", status=409)
    resource = audit.resource(token, type="Enrollment token", name=f"{token.hint}… for {token.name}")
    token.delete()
    audit.record(
        actor,
        activity="Cancel connector enrollment token",
        category=CATEGORY,
        operation="delete",
        resources=[resource],
    )


@transaction.atomic
def connector_enroll(
    *,
    token: str,
    host_name: str,
    version: str,
    features: Sequence[str],
    name: str = "",
    ip: str | None = None,
) -> tuple[Connector, str]:
    """Trade a one-time token for a connector and its credential; the token cannot be used again."""
    now = timezone.now()
    row = tokens.redeemable(
        EnrollmentToken.objects.select_for_update().filter(token_hash=hash_secret(token)).first(),
        now,
        "enrollment token",
    )
    # Conditional update: of two agents racing with one token, exactly one wins.
    if not EnrollmentToken.objects.filter(pk=row.pk, used_at=None).update(used_at=now):
        raise Refused("token_used", "The enrollment token has already been used.", status=401)
    credential = tokens.new(CREDENTIAL_PREFIX)
    connector = Connector(
        name=(name.strip() or row.name or host_name or "Connector")[:100],
        host_name=host_name[:255],
        version=version[:50],
        features=[f for f in features if f in FEATURES],
        credential_hash=hash_secret(credential),
        enrolled_at=now,
        enrolled_ip=ip,
    )
    refusal.full_clean(connector)
    connector.save()
    connector.scope_tags.set(list(row.scope_tags.all()) or [ScopeTag.default()])
    EnrollmentToken.objects.filter(pk=row.pk).update(connector=connector)
    record_event(connector, ConnectorEvent.ENROLLED, f"Enrolled from {host_name or 'an unnamed machine'}.")
    audit.record(
        connector_actor(connector, ip),
        activity="Enroll connector",
        category=CATEGORY,
        operation="create",
        resources=[
            audit.resource(connector, type="Certificate connector"),
            audit.resource(row, type="Enrollment token", name=f"{row.hint}…"),
        ],
    )
    return connector, credential


def connector_authenticate(credential: str) -> Connector:
    """The connector owning this credential; revoked and disabled ones are refused at once."""
    if not credential.startswith(CREDENTIAL_PREFIX):
        raise Refused(
            "invalid_credential", "Send 'Authorization: Bearer <connector credential>'.", status=401
        )
    connector = Connector.objects.filter(credential_hash=hash_secret(credential)).first()
    if connector is None:
        raise Refused("invalid_credential", "The connector credential is not valid.", status=401)
    if connector.state == Connector.State.DISABLED:
        raise Refused("connector_disabled", "An administrator disabled this connector.", status=403)
    if connector.state != Connector.State.ACTIVE:
        raise Refused("connector_revoked", "This connector has been revoked.", status=401)
    return connector


# --- Trust changes by an admin ------------------------------------------------------


def _change(
    actor: Actor, connector: Connector, *, activity: str, fields: dict[str, Any], operation: str = "update"
) -> None:
    before = audit.snapshot(connector, list(fields))
    for name, value in fields.items():
        setattr(connector, name, value)
    refusal.full_clean(connector)
    connector.save(update_fields=list(fields))
    audit.record(
        actor,
        activity=activity,
        category=CATEGORY,
        operation=operation,
        resources=[
            audit.resource(
                connector,
                type="Certificate connector",
                changes=audit.changes(before, audit.snapshot(connector, list(fields))),
            )
        ],
    )


@transaction.atomic
def connector_rename(actor: Actor, connector: Connector, *, name: str) -> None:
    _change(actor, connector, activity="Rename connector", fields={"name": name.strip()[:100]})


def _switch(actor: Actor, connector: Connector, *, activity: str, state: Connector.State) -> None:
    if connector.state == Connector.State.REVOKED:
        raise Refused("connector_revoked", "A revoked connector cannot be disabled or enabled.")
    _change(actor, connector, activity=activity, fields={"state": state})
    health.record_status(connector, timezone.now())


@transaction.atomic
def connector_disable(actor: Actor, connector: Connector) -> None:
    _switch(actor, connector, activity="Disable connector", state=Connector.State.DISABLED)


@transaction.atomic
def connector_enable(actor: Actor, connector: Connector) -> None:
    _switch(actor, connector, activity="Enable connector", state=Connector.State.ACTIVE)


@transaction.atomic
def connector_revoke(actor: Actor, connector: Connector) -> None:
    """Permanent: the credential hash is dropped, so the agent's next request is refused."""
    _change(
        actor,
        connector,
        activity="Revoke connector",
        fields={"state": Connector.State.REVOKED, "credential_hash": None},
    )
    rotation.release_claims(connector)
    health.record_status(connector, timezone.now())


@transaction.atomic
def connector_delete(actor: Actor, connector: Connector) -> None:
    rotation.release_claims(connector)
    audit.record(
        actor,
        activity="Delete connector",
        category=CATEGORY,
        operation="delete",
        resources=[audit.resource(connector, type="Certificate connector")],
    )
    connector.delete()

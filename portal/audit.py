"""Writing audit events.

Services call :func:`record` inside their ``transaction.atomic`` block, so an event
exists exactly when its change does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import models, transaction
from django.http import HttpRequest

from portal.models import AuditEvent, User


@dataclass(frozen=True)
class Actor:
    """Who is making a change, and from where. Passed to every service."""

    user: User | None
    name: str
    type: str = AuditEvent.ActorType.USER
    ip: str | None = None
    correlation_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        user = request.user if request.user.is_authenticated else None
        assert user is None or isinstance(user, User)
        return cls(
            user=user,
            name=user.email if user else "anonymous",
            ip=request.META.get("REMOTE_ADDR") or None,
            correlation_id=getattr(request, "correlation_id", None) or uuid.uuid4(),
        )

    @classmethod
    def for_user(cls, user: User, *, ip: str | None = None) -> Actor:
        return cls(user=user, name=user.email, ip=ip)

    @classmethod
    def system(cls, name: str = "PFX Portal") -> Actor:
        return cls(user=None, name=name, type=AuditEvent.ActorType.SYSTEM)

    @classmethod
    def connector(cls, name: str, ip: str | None = None) -> Actor:
        return cls(user=None, name=name, type=AuditEvent.ActorType.CONNECTOR, ip=ip)


def _plain(value: Any) -> Any:
    """Make a field value JSON-friendly and readable in the audit detail page."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, bytes):
        return [_plain(v) for v in value]
    return str(value)


def snapshot(obj: models.Model, fields: Sequence[str]) -> dict[str, Any]:
    """Capture the audited fields of ``obj``; many-to-many fields become sorted name lists."""
    values: dict[str, Any] = {}
    for name in fields:
        attr = getattr(obj, name)
        if isinstance(attr, models.Manager):
            values[name] = sorted(str(item) for item in attr.all()) if obj.pk else []
        else:
            values[name] = _plain(attr)
    return values


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {"field": name, "old": before.get(name), "new": after.get(name)}
        for name in after
        if before.get(name) != after.get(name)
    ]


def resource(
    obj: models.Model | None = None,
    *,
    type: str | None = None,
    id: str | None = None,
    name: str | None = None,
    changes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "type": type or (str(obj._meta.verbose_name).title() if obj is not None else ""),
        "id": id if id is not None else str(getattr(obj, "code", None) or getattr(obj, "pk", "")),
        "name": name if name is not None else str(obj),
        "changes": changes or [],
    }


def record(
    actor: Actor,
    *,
    activity: str,
    category: str,
    operation: str,
    resources: list[dict[str, Any]],
    result: str = AuditEvent.Result.SUCCESS,
) -> AuditEvent:
    if not transaction.get_connection().in_atomic_block:
        # An audit row written outside the change's transaction could survive a
        # rolled-back change, or be lost after a committed one.
        raise RuntimeError("audit.record() must be called inside the transaction that makes the change")
    return AuditEvent.objects.create(
        actor=actor.user,
        actor_type=actor.type,
        actor_name=actor.name[:254],
        actor_ip=actor.ip,
        activity=activity,
        operation=operation,
        category=category,
        result=result,
        correlation_id=actor.correlation_id,
        resources=_plain(resources),
    )

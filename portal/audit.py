"""Writing audit events.

Services call :func:`record` inside their ``transaction.atomic`` block, so an event
exists exactly when its change does.

Each event also stores the scope of the tagged objects it names (their area and scope
tags at the time), so that ``portal.access.audit_events`` shows it only to admins who may
read those objects, even after the objects change or are gone.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import models, transaction
from django.http import HttpRequest

from portal import rbac
from portal.lib import lean
from portal.models import AuditEvent, User

# The key under which resource() hands an object's scope to record(); never stored.
_SCOPE = "_scope"


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
    scope: models.Model | type[models.Model] | None = None,
) -> dict[str, Any]:
    """One target of an event. Its scope is that of ``scope`` if given, else of ``obj``. For an
    object no longer at hand, pass its model class: with no tags known, the event is shown only to
    admins who read every object of that model.

    Call it before deleting ``obj``: the object's tags are read here.
    """
    result: dict[str, Any] = {
        "type": type or (str(obj._meta.verbose_name).title() if obj is not None else ""),
        "id": id if id is not None else str(getattr(obj, "code", None) or getattr(obj, "pk", "")),
        "name": name if name is not None else str(obj),
        "changes": changes or [],
    }
    target = scope if scope is not None else obj
    if target is not None:
        found = _scope_of(target)
        if found is not None:
            result[_SCOPE] = found
    return result


def resources[M: models.Model](
    objects: Iterable[M], *, type: str, name: Callable[[M], str]
) -> list[dict[str, Any]]:
    """:func:`resource` for many objects of one model (a chunk of an import), reading their tags in one query."""
    objects = list(objects)
    if not objects:
        return []
    model = objects[0].__class__
    tags: dict[Any, dict[str, str]] = {}
    if _area_of(model):
        column = f"{model._meta.model_name}_id"
        through = model.scope_tags.through  # type: ignore[attr-defined]
        rows = through.objects.filter(**{f"{column}__in": [o.pk for o in objects]}).values_list(
            column, "scopetag_id", "scopetag__name"
        )
        for pk, tag_id, tag_name in rows:
            tags.setdefault(pk, {})[str(tag_id)] = tag_name
    scope = _scope_of(model)
    result = []
    for obj in objects:
        described = resource(type=type, id=str(getattr(obj, "code", None) or obj.pk), name=name(obj))
        if scope is not None:
            described[_SCOPE] = scope | {"tags": tags.get(obj.pk, {})}
        result.append(described)
    return result


def _area_of(model: type[models.Model]) -> str:
    area = str(getattr(model, "RBAC_AREA", "") or "")
    return area if area in rbac.SCOPED_AREAS else ""


def _scope_of(target: models.Model | type[models.Model]) -> dict[str, Any] | None:
    model = target if isinstance(target, type) else target.__class__
    area = _area_of(model)
    if not area:
        return None
    tags: dict[str, str] = {}
    if isinstance(target, models.Model) and target.pk is not None:
        tags = {str(tag.pk): tag.name for tag in target.scope_tags.all()}  # type: ignore[attr-defined]
    return {"area": area, "tags": tags, "through": str(getattr(model, "RBAC_READ_THROUGH", "") or "")}


def _event_scope(scopes: list[dict[str, Any]]) -> tuple[str, dict[str, str], str]:
    """The area, tags and read-through permission of an event naming objects with ``scopes``.

    An admin must reach every object named, so the event keeps only the tags all of them
    share: an event naming objects of disjoint tags is shown to admins who read the area in
    full. Objects of several areas are rare; such an event is shown only to admins who read
    every tagged area in full (its area matches no single area).
    """
    if not scopes:
        return "", {}, ""
    areas = sorted({s["area"] for s in scopes})
    tags = dict(scopes[0]["tags"])
    for s in scopes[1:]:
        tags = {k: v for k, v in tags.items() if k in s["tags"]}
    throughs = {s["through"] for s in scopes}
    through = throughs.pop() if len(throughs) == 1 and len(areas) == 1 else ""
    return ",".join(areas), tags, through


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
    scopes = [r[_SCOPE] for r in resources if _SCOPE in r]
    area, tags, through = _event_scope(scopes)
    stored = [{k: v for k, v in r.items() if k != _SCOPE} for r in resources]
    event = AuditEvent(
        actor=actor.user,
        actor_type=actor.type,
        actor_name=actor.name[:254],
        actor_ip=actor.ip,
        activity=activity,
        operation=operation,
        category=category,
        result=result,
        correlation_id=actor.correlation_id,
        resources=_plain(stored),
        scope_area=area,
        scope_tags=tags,
        scope_through=through,
    )
    # Written out (several a second from device check-ins and reports); a new event only, as its
    # save() allows.
    lean.insert([event])
    return event

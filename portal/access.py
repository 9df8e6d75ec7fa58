"""Role-based access with scope tags: the one place that decides who sees and changes what.

An admin holds permissions through role assignments. For areas whose objects
carry scope tags, a permission reaches only the objects that share a tag with
the assignment granting it; an assignment with no tags reaches every object.
Each permission counts only the assignments that grant it: an untagged read-only
assignment widens reads, never the tags an admin may write.

Some objects belong to an object of another area, and whoever may read the owner
may read them too, whatever their own tags (a certificate is visible to whoever may
see its user). A model names that owner's read permission in ``RBAC_READ_THROUGH``.

Audit events are read through :func:`audit_events`, which applies the same rules to
the objects an event names, from the scope stored on the event when it was written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache, wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import connection, models
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest

from portal import rbac
from portal.models import AuditEvent, Role, RoleAssignment, ScopeTag, User

AnyUser = User | AnonymousUser


@dataclass(frozen=True)
class Grant:
    """Whether a permission is held, and over which scope tags (``None``: all of them)."""

    held: bool
    tag_ids: frozenset[int] | None

    @property
    def everything(self) -> bool:
        return self.held and self.tag_ids is None


NO_GRANT = Grant(held=False, tag_ids=frozenset())
FULL_GRANT = Grant(held=True, tag_ids=None)


@dataclass(frozen=True)
class _Assignment:
    role_name: str
    permissions: frozenset[str]
    tag_ids: frozenset[int]
    requires_mfa: bool


def _assignments(user: User) -> list[_Assignment]:
    cached: list[_Assignment] | None = getattr(user, "_portal_assignments", None)
    if cached is None:
        # One query, written out (every page runs it; building it through the ORM costs more than
        # it): an assignment's row repeats per scope tag.
        with connection.cursor() as cursor:
            q = connection.ops.quote_name
            cursor.execute(f"{assignments_sql()} WHERE m.{q('user_id')} = %s ORDER BY a.{q('id')}", [user.pk])
            rows = cursor.fetchall()
        cached = prime(user, [row[1:] for row in rows])
    return cached


def prime(user: User, rows: Iterable[Sequence[Any]]) -> list[_Assignment]:
    """Keep on ``user`` the assignments read from ``rows`` of ``assignments_sql()`` (without its user
    column; rows whose assignment id is NULL are skipped): the checks of this request read them."""
    found: dict[int, tuple[str, Any, bool, set[int]]] = {}
    for pk, role_name, permissions, mfa, tag_id in rows:
        if pk is None:
            continue
        if isinstance(permissions, str):  # a JSON column read without its field
            permissions = json.loads(permissions)
        tags = found.setdefault(pk, (role_name, permissions, bool(mfa), set()))[3]
        if tag_id is not None:
            tags.add(tag_id)
    assignments = [
        _Assignment(
            role_name=role_name,
            permissions=frozenset(p for p in permissions or () if isinstance(p, str)),
            tag_ids=frozenset(tags),
            requires_mfa=mfa,
        )
        for role_name, permissions, mfa, tags in found.values()
    ]
    user._portal_assignments = assignments  # type: ignore[attr-defined]
    return assignments


@cache
def assignments_sql() -> str:
    """Every role assignment's rows, one per scope tag: the member's user id, then the assignment's
    id, role name, permissions, whether it requires MFA, and a scope tag id (NULL: none)."""
    q = connection.ops.quote_name
    members = RoleAssignment.members.through._meta
    tags = RoleAssignment.scope_tags.through._meta
    return (
        f"SELECT m.{q('user_id')}, a.{q('id')}, r.{q('name')}, r.{q('permissions')}, r.{q('requires_mfa')}, "
        f"t.{q('scopetag_id')} "
        f"FROM {q(RoleAssignment._meta.db_table)} a "
        f"JOIN {q(members.db_table)} m ON m.{q('roleassignment_id')} = a.{q('id')} "
        f"JOIN {q(Role._meta.db_table)} r ON r.{q('id')} = a.{q('role_id')} "
        f"LEFT JOIN {q(tags.db_table)} t ON t.{q('roleassignment_id')} = a.{q('id')}"
    )


def forget(user: User) -> None:
    """Drop the cached assignments (after they change within one request)."""
    if hasattr(user, "_portal_assignments"):
        del user._portal_assignments


def grant(user: AnyUser, permission: str) -> Grant:
    if not user.is_authenticated or not user.is_active:
        return NO_GRANT
    assert isinstance(user, User)
    if user.is_superuser:
        return FULL_GRANT
    area = permission.split(".", 1)[0]
    tag_ids: set[int] = set()
    held = False
    for assignment in _assignments(user):
        if permission not in assignment.permissions:
            continue
        held = True
        if not assignment.tag_ids or area not in rbac.SCOPED_AREAS:
            return FULL_GRANT
        tag_ids |= assignment.tag_ids
    return Grant(held=True, tag_ids=frozenset(tag_ids)) if held else NO_GRANT


def has_perm(user: AnyUser, permission: str) -> bool:
    return grant(user, permission).held


def permissions(user: AnyUser) -> frozenset[str]:
    return frozenset(p for p in rbac.ALL_PERMISSIONS if has_perm(user, p))


def role_names(user: User) -> list[str]:
    """The names of the roles ``user`` holds through their assignments, sorted, each once."""
    return sorted({a.role_name for a in _assignments(user)})


def requires_mfa(user: User) -> bool:
    return user.is_superuser or any(a.requires_mfa for a in _assignments(user))


def _area(model: type[models.Model]) -> str:
    area = getattr(model, "RBAC_AREA", "")
    if not area:
        raise TypeError(f"{model.__name__} has no RBAC_AREA")
    return str(area)


def _read_through(model: type[models.Model], user: AnyUser) -> bool:
    """Whether ``user`` reads every object of ``model`` through the objects they belong to."""
    owner_permission = str(getattr(model, "RBAC_READ_THROUGH", "") or "")
    return bool(owner_permission) and grant(user, owner_permission).everything


def scoped[M: models.Model](queryset: QuerySet[M], user: AnyUser, action: str = "read") -> QuerySet[M]:
    """Filter ``queryset`` to the objects ``user`` may ``action``."""
    area = _area(queryset.model)
    g = grant(user, f"{area}.{action}")
    if not g.held:
        return queryset.none()
    if g.tag_ids is None or area not in rbac.SCOPED_AREAS:
        return queryset
    if action == "read" and _read_through(queryset.model, user):
        return queryset
    through = queryset.model._meta.get_field("scope_tags").remote_field.through  # type: ignore[union-attr]
    source = f"{queryset.model._meta.model_name}_id"
    tagged = through.objects.filter(**{source: OuterRef("pk"), "scopetag_id__in": g.tag_ids})
    return queryset.filter(Exists(tagged))


def reads_all(user: AnyUser, model: type[models.Model]) -> bool:
    """Whether ``user`` reads every object of ``model``: if so, an empty list means there are none."""
    area = _area(model)
    g = grant(user, f"{area}.read")
    return g.held and (g.tag_ids is None or area not in rbac.SCOPED_AREAS or _read_through(model, user))


def can(user: AnyUser, permission: str, obj: models.Model | None = None) -> bool:
    """Whether ``user`` holds ``permission``, and (for a tagged object) reaches ``obj`` with it."""
    g = grant(user, permission)
    if not g.held:
        return False
    if obj is None or g.tag_ids is None:
        return True
    area, action = permission.split(".", 1)
    if area not in rbac.SCOPED_AREAS:
        return True
    if action == "read" and _read_through(type(obj), user):
        return True
    return bool(g.tag_ids & set(obj.scope_tags.values_list("pk", flat=True)))  # type: ignore[attr-defined]


def get_for_user[M: models.Model](
    user: AnyUser, queryset: QuerySet[M], *, write: str | None = None, **lookup: Any
) -> M:
    """Fetch one object the user can see (404 otherwise); with ``write``, also require that action (403)."""
    try:
        obj = scoped(queryset, user, "read").get(**lookup)
    except (models.ObjectDoesNotExist, ValueError) as exc:
        raise Http404 from exc
    if write is not None and not can(user, f"{_area(queryset.model)}.{write}", obj):
        raise PermissionDenied
    return obj


def tag_limit(user: AnyUser, permission: str) -> frozenset[int] | None:
    """The tags of the assignments granting ``permission``: ``None`` if one of them has none (no limit).

    Empty when the permission is not held. Unlike :func:`grant`, this applies to tenant-wide
    areas too: the tags an admin may hand out on role assignments are those of the assignments
    that let them assign roles.
    """
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    assert isinstance(user, User)
    if user.is_superuser:
        return None
    ids: set[int] = set()
    for assignment in _assignments(user):
        if permission not in assignment.permissions:
            continue
        if not assignment.tag_ids:
            return None
        ids |= assignment.tag_ids
    return frozenset(ids)


def held_tags(user: AnyUser, permission: str) -> QuerySet[ScopeTag]:
    """The tags an admin may give to objects with ``permission``: see :func:`tag_limit`."""
    limit = tag_limit(user, permission)
    if limit is None:
        return ScopeTag.objects.all()
    return ScopeTag.objects.filter(pk__in=limit)


def creator_tags(user: AnyUser, area: str, requested: Iterable[ScopeTag] | None = None) -> list[ScopeTag]:
    """Tags for a new object: the requested ones (if held), else the creator's, else Default."""
    permission = f"{area}.create"
    held = list(held_tags(user, permission))
    held_ids = {t.pk for t in held}
    if requested:
        chosen = [t for t in requested if t.pk in held_ids]
        if chosen:
            return chosen
    if tag_limit(user, permission):
        return held
    return [ScopeTag.default()]


def audit_events(queryset: QuerySet[AuditEvent], user: AnyUser) -> QuerySet[AuditEvent]:
    """Filter ``queryset`` to the events ``user`` may read.

    An event naming tagged objects is shown only to admins who may read those objects, judged
    from the scope written on the event (``portal.audit.record``), so it stays right after the
    objects change or are deleted. Events written before scopes were stored have none
    (``scope_area`` NULL) and are shown only to admins who read every tagged area in full.
    """
    if not has_perm(user, "audit.read"):
        return queryset.none()
    reads = {area: grant(user, f"{area}.read") for area in sorted(rbac.SCOPED_AREAS)}
    if all(g.everything for g in reads.values()):
        return queryset
    in_full = [p for p in rbac.ALL_PERMISSIONS if grant(user, p).everything]
    visible = Q(scope_area="")
    for area, g in reads.items():
        if not g.held:
            continue
        if g.tag_ids is None:
            visible |= Q(scope_area=area)
            continue
        visible |= Q(scope_area=area, scope_through__in=in_full)
        if g.tag_ids:
            visible |= Q(scope_area=area, scope_tags__has_any_keys=[str(pk) for pk in sorted(g.tag_ids)])
    return queryset.filter(visible)


V = TypeVar("V", bound=Callable[..., Any])


def permission_required(permission: str) -> Callable[[V], V]:
    """View decorator: 403 unless the signed-in admin holds ``permission`` on some object."""
    if permission not in rbac.ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def decorator(view: V) -> V:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if not has_perm(request.user, permission):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return cast(V, wrapped)

    return decorator


def viewer_key(user: AnyUser) -> str:
    """Names everything ``user`` may see and do: admins with the same key are shown the same pages.

    Built from what decides every check here (superuser, and each role assignment's permissions
    and scope tags), so a page rendered for one admin may be shown to another only when no check
    could tell them apart.
    """
    if not user.is_authenticated or not user.is_active:
        return "anonymous"
    assert isinstance(user, User)
    if user.is_superuser:
        return "superuser"
    parts = sorted(
        ",".join(sorted(a.permissions))
        + "|"
        + ",".join(str(t) for t in sorted(a.tag_ids))
        + f"|{a.requires_mfa}"
        for a in _assignments(user)
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()

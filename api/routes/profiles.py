"""PKCS imported certificate profiles: list, get, create, update settings and assignments, delete,
and their status report."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from django.db.models import F, Func, QuerySet, TextField
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Router, Status

from api import auth, render
from api.auth import needs
from api.columns import JsonBool, JsonObject, JsonTexts, TimeText, UuidText, uuid_text_sql
from api.common import ERRORS, user
from api.schemas import (
    AssignmentsIn,
    ProfileCreateIn,
    ProfileOut,
    ProfileStatusOut,
    ProfileUpdateIn,
)
from directory.models import Group
from portal import access
from portal.lib.refusal import Refused
from portal.lib.shapes import Shapes
from portal.models import ScopeTag
from profiles import reports, services
from profiles.models import Profile, ProfileAssignment

router = Router(tags=["Profiles"])


FIELDS = (
    "code",
    "name",
    "description",
    "platform",
    "profile_type",
    "intended_purpose",
    "key_storage_provider",
    "certificate_access",
    "silent_access_packages",
    "all_users",
    "all_devices",
    "created_at",
    "updated_at",
)

# The fields of FIELDS the database writes as the answer's text.
VALUES: dict[str, Any] = {
    "code": UuidText("code"),
    "created_at": TimeText("created_at"),
    "updated_at": TimeText("updated_at"),
}


class _Related(Func):
    """A subquery on the profile's id, written out: the ORM cannot aggregate a JSON array per row."""

    output_field = TextField()

    def __init__(self) -> None:
        super().__init__(F("pk"))

    def sql(self, outer: str, vendor: str, q: Callable[[str], str]) -> str:
        raise NotImplementedError

    def as_sql(self, compiler: Any, connection: Any, *args: Any, **extra: Any) -> Any:
        outer, params = compiler.compile(self.source_expressions[0])
        return self.sql(outer, connection.vendor, connection.ops.quote_name), params


class ProfileGroups(_Related):
    """The profile's groups of one mode as ``[{"object_id", "display_name"}]``, by name."""

    def __init__(self, mode: str) -> None:
        if mode not in ProfileAssignment.Mode.values:
            raise ValueError(mode)
        self.mode = mode
        super().__init__()

    def sql(self, outer: str, vendor: str, q: Callable[[str], str]) -> str:
        rows = (
            f"FROM {q(ProfileAssignment._meta.db_table)} a JOIN {q(Group._meta.db_table)} g "
            f"ON g.{q('id')} = a.{q('group_id')} WHERE a.{q('profile_id')} = {outer} "
            f"AND a.{q('mode')} = '{self.mode}'"
        )
        object_id = uuid_text_sql(f"g.{q('object_id')}", vendor)
        if vendor == "postgresql":
            # Each group by its primary key: left to itself the planner hashed the whole group table
            # once per profile (0.2 ms each, 11 of the list's 14 ms); OFFSET 0 keeps the lookup apart.
            group = q(Group._meta.db_table)
            rows = (
                f"FROM {q(ProfileAssignment._meta.db_table)} a CROSS JOIN LATERAL (SELECT {q('object_id')}, "
                f"{q('display_name')} FROM {group} WHERE {group}.{q('id')} = a.{q('group_id')} OFFSET 0) g "
                f"WHERE a.{q('profile_id')} = {outer} AND a.{q('mode')} = '{self.mode}'"
            )
            return (
                f"(SELECT coalesce(json_agg(json_build_object('object_id', {object_id}, 'display_name', "
                f"g.{q('display_name')}) ORDER BY g.{q('display_name')}, a.{q('id')}), '[]'::json) {rows})"
            )
        return (
            f"json((SELECT json_group_array(json_object('object_id', object_id, 'display_name', display_name)) "
            f"FROM (SELECT {object_id} AS object_id, g.{q('display_name')} AS display_name {rows} "
            f"ORDER BY g.{q('display_name')}, a.{q('id')})))"
        )


class ProfileTags(_Related):
    """The names of the profile's scope tags, in order."""

    def sql(self, outer: str, vendor: str, q: Callable[[str], str]) -> str:
        through = Profile.scope_tags.through._meta.db_table
        rows = (
            f"FROM {q(through)} x JOIN {q(ScopeTag._meta.db_table)} t ON t.{q('id')} = x.{q('scopetag_id')} "
            f"WHERE x.{q('profile_id')} = {outer}"
        )
        if vendor == "postgresql":
            return f"(SELECT coalesce(json_agg(t.{q('name')} ORDER BY t.{q('name')}), '[]'::json) {rows})"
        return f"json((SELECT json_group_array(name) FROM (SELECT t.{q('name')} AS name {rows} ORDER BY t.{q('name')})))"


# ProfileOut as JSON text, written by the database: one query for any number of profiles and groups.
PROFILE_JSON = JsonObject(
    {
        **{name: VALUES.get(name, name) for name in FIELDS},
        "silent_access_packages": JsonTexts("silent_access_packages"),
        "all_users": JsonBool("all_users"),
        "all_devices": JsonBool("all_devices"),
        "include_groups": ProfileGroups(ProfileAssignment.Mode.INCLUDE),
        "exclude_groups": ProfileGroups(ProfileAssignment.Mode.EXCLUDE),
        "scope_tags": ProfileTags(),
    }
)
SHAPES = Shapes("api.profiles")


def profile_texts(
    key: Hashable, build: Callable[[Mapping[str, Any]], QuerySet[Profile]], values: Mapping[str, Any]
) -> list[str]:
    """ProfileOut as JSON text for each profile ``build`` makes from ``values``, in its order; the
    query is compiled once per shape (``key``, see portal.lib.shapes)."""
    return [row[0] for row in SHAPES.rows(key, lambda v: build(v).values_list(PROFILE_JSON), values)]


def _answer(profile: Profile, status: int = 200) -> HttpResponse:
    [text] = profile_texts(None, lambda v: Profile.objects.filter(pk=v["pk"]), {"pk": profile.pk})
    return render.json_text(text, status)


def _get(request: HttpRequest, code: uuid.UUID, write: str | None = None) -> Profile:
    return access.get_for_user(user(request), Profile.objects.all(), write=write, code=code)


def _groups(ids: Sequence[uuid.UUID]) -> tuple[Group, ...]:
    found = {g.object_id: g for g in Group.objects.filter(object_id__in=list(ids), removed_at__isnull=True)}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise Refused("unknown_group", f"No such group: {', '.join(missing[:5])}.")
    return tuple(found[i] for i in ids)


@router.get(
    "/profiles",
    response={200: list[ProfileOut], **ERRORS},
    summary="List profiles",
    auth=needs("profiles.read"),
)
def profile_list(request: HttpRequest) -> HttpResponse:
    admin = user(request)

    def answer() -> str:
        texts = profile_texts(
            access.viewer_key(admin),
            lambda v: access.scoped(Profile.objects.order_by("name", "pk"), admin),
            {},
        )
        return f"[{','.join(texts)}]"

    return render.kept_json(request, "profiles", answer)


@router.get(
    "/profiles/{code}",
    response={200: ProfileOut, **ERRORS},
    summary="Get a profile",
    auth=needs("profiles.read"),
)
def profile_get(request: HttpRequest, code: uuid.UUID) -> HttpResponse:
    admin = user(request)
    found = profile_texts(
        access.viewer_key(admin),
        lambda v: access.scoped(Profile.objects.filter(code=v["code"]), admin),
        {"code": code},
    )
    if not found:
        raise Http404
    return render.json_text(found[0])


@router.post(
    "/profiles",
    response={201: ProfileOut, **ERRORS},
    summary="Create a profile",
    auth=needs("profiles.create"),
)
def profile_create(request: HttpRequest, body: ProfileCreateIn) -> HttpResponse:
    draft = services.ProfileDraft(
        platform=body.platform,
        name=body.name,
        intended_purpose=body.intended_purpose,
        description=body.description,
        key_storage_provider=body.key_storage_provider,
        certificate_access=body.certificate_access,
        silent_access_packages=tuple(body.silent_access_packages),
        scope_tags=tuple(ScopeTag.objects.filter(name__in=body.scope_tags)),
        all_users=body.all_users,
        all_devices=body.all_devices,
        include_groups=_groups(body.include_groups),
        exclude_groups=_groups(body.exclude_groups),
    )
    profile = services.profile_create(actor=auth.actor(request), draft=draft)
    return _answer(profile, 201)


@router.patch(
    "/profiles/{code}",
    response={200: ProfileOut, **ERRORS},
    summary="Update a profile's settings",
    auth=needs("profiles.update"),
)
def profile_update(request: HttpRequest, code: uuid.UUID, body: ProfileUpdateIn) -> HttpResponse:
    profile = _get(request, code, write="update")
    actor = auth.actor(request)
    if body.name is not None or body.description is not None:
        profile = services.profile_update_basics(
            actor=actor,
            profile=profile,
            name=profile.name if body.name is None else body.name,
            description=profile.description if body.description is None else body.description,
        )
    if body.certificate_access is not None or body.silent_access_packages is not None:
        profile = services.profile_update_settings(
            actor=actor,
            profile=profile,
            certificate_access=profile.certificate_access
            if body.certificate_access is None
            else body.certificate_access,
            silent_access_packages=profile.silent_access_packages
            if body.silent_access_packages is None
            else body.silent_access_packages,
        )
    return _answer(profile)


@router.put(
    "/profiles/{code}/assignments",
    response={200: ProfileOut, **ERRORS},
    summary="Set a profile's assignments",
    auth=needs("profiles.assign"),
)
def profile_assign(request: HttpRequest, code: uuid.UUID, body: AssignmentsIn) -> HttpResponse:
    profile = _get(request, code, write="assign")
    services.profile_set_assignments(
        actor=auth.actor(request),
        profile=profile,
        all_users=body.all_users,
        all_devices=body.all_devices,
        include=_groups(body.include_groups),
        exclude=_groups(body.exclude_groups),
    )
    return _answer(profile)


@router.delete(
    "/profiles/{code}",
    response={204: None, **ERRORS},
    summary="Delete a profile",
    auth=needs("profiles.delete"),
)
def profile_delete(request: HttpRequest, code: uuid.UUID) -> Status[None]:
    profile = _get(request, code, write="delete")
    services.profile_delete(actor=auth.actor(request), profile=profile)
    return Status(204, None)


@router.get(
    "/profiles/{code}/status",
    response={200: ProfileStatusOut, **ERRORS},
    summary="A profile's status report",
    auth=needs("profiles.read"),
)
def profile_status(request: HttpRequest, code: uuid.UUID) -> ProfileStatusOut:
    """Device and user counts per delivery status, as the profile's overview shows them."""
    summary = reports.evaluate(_get(request, code)).summary()
    return ProfileStatusOut(devices=summary.devices, users=summary.users, reasons=summary.reasons)

"""PKCS imported certificate profiles: list, get, create, update settings and assignments, delete,
and their status report."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Router, Status

from api import auth, render
from api.auth import needs
from api.columns import TimeText, UuidText
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

# The fields of FIELDS the database reads as the answer's text.
VALUES: dict[str, Any] = {
    "code": UuidText("code"),
    "created_at": TimeText("created_at"),
    "updated_at": TimeText("updated_at"),
}


# Built once: a request clones these instead of resolving their columns again.
ROW_VALUES = tuple(VALUES.get(name, name) for name in FIELDS)
ASSIGNED = ProfileAssignment.objects.order_by("group__display_name", "pk").values_list(
    "profile_id", "mode", UuidText("group__object_id"), "group__display_name"
)
TAGGED = Profile.scope_tags.through.objects.order_by("scopetag__name").values_list(
    "profile_id", "scopetag__name"
)


ROW_SHAPES = Shapes("api.profiles")
GROUP_SHAPES = Shapes("api.profiles.groups")
TAG_SHAPES = Shapes("api.profiles.tags")


def profile_dicts(
    key: Hashable, build: Callable[[Mapping[str, Any]], QuerySet[Profile]], values: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """ProfileOut for each profile ``build`` makes from ``values``, in its order: three queries whatever
    the number of profiles and groups, each compiled once per shape (``key``, see portal.lib.shapes)."""
    found = ROW_SHAPES.rows(key, lambda v: build(v).values_list("pk", *ROW_VALUES), values)
    if not found:
        return []
    include, exclude = str(ProfileAssignment.Mode.INCLUDE), str(ProfileAssignment.Mode.EXCLUDE)
    groups: dict[int, dict[str, list[dict[str, Any]]]] = {row[0]: {include: [], exclude: []} for row in found}
    for pk, mode, object_id, name in GROUP_SHAPES.rows(
        key, lambda v: ASSIGNED.filter(profile__in=build(v).order_by().values("pk")), values
    ):
        groups[pk][mode].append({"object_id": object_id, "display_name": name})
    tags: dict[int, list[str]] = {row[0]: [] for row in found}
    for pk, name in TAG_SHAPES.rows(
        key, lambda v: TAGGED.filter(profile__in=build(v).order_by().values("pk")), values
    ):
        tags[pk].append(name)
    result = []
    for pk, *row in found:
        item = dict(zip(FIELDS, row, strict=True))
        item["silent_access_packages"] = [str(v) for v in item["silent_access_packages"] or []]
        item["include_groups"] = groups[pk][include]
        item["exclude_groups"] = groups[pk][exclude]
        item["scope_tags"] = tags[pk]
        result.append(item)
    return result


def _answer(profile: Profile, status: int = 200) -> HttpResponse:
    item = profile_dicts(None, lambda v: Profile.objects.filter(pk=v["pk"]), {"pk": profile.pk})[0]
    return render.json_answer(item, status)


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
    rows = profile_dicts(
        access.viewer_key(admin), lambda v: access.scoped(Profile.objects.order_by("name", "pk"), admin), {}
    )
    return render.json_answer(rows)


@router.get(
    "/profiles/{code}",
    response={200: ProfileOut, **ERRORS},
    summary="Get a profile",
    auth=needs("profiles.read"),
)
def profile_get(request: HttpRequest, code: uuid.UUID) -> HttpResponse:
    admin = user(request)
    found = profile_dicts(
        access.viewer_key(admin),
        lambda v: access.scoped(Profile.objects.filter(code=v["code"]), admin),
        {"code": code},
    )
    if not found:
        raise Http404
    return render.json_answer(found[0])


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

"""Small builders for directory and profile rows; each test makes only what it needs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from directory.models import (
    Device,
    DirectoryUser,
    Group,
    GroupDeviceMember,
    GroupUserMember,
    Platform,
    WindowsEdition,
)
from profiles.models import ApplicabilityRule, IntendedPurpose, KeyStorageProvider, Profile, ProfileAssignment


def user(upn: str, *groups: Group) -> DirectoryUser:
    obj = DirectoryUser.objects.create(upn=upn, display_name=upn.split("@")[0].title())
    for g in groups:
        GroupUserMember.objects.create(group=g, user=obj)
    return obj


def group(name: str, kind: str = Group.Kind.USER) -> Group:
    return Group.objects.create(display_name=name, kind=kind)


def device(
    name: str,
    owner: DirectoryUser | None,
    *groups: Group,
    platform: str = Platform.WINDOWS,
    edition: str = WindowsEdition.ENTERPRISE,
    version: str = "10.0.19045.1",
) -> Device:
    obj = Device(
        name=name,
        primary_user=owner,
        platform=platform,
        os_edition=edition if platform == Platform.WINDOWS else "",
    )
    obj.set_os_version(version)
    obj.save()
    for g in groups:
        GroupDeviceMember.objects.create(group=g, device=obj)
    return obj


def profile(
    name: str = "S/MIME encryption",
    *,
    include: Iterable[Group] = (),
    exclude: Iterable[Group] = (),
    rules: Iterable[dict[str, Any]] = (),
    **fields: Any,
) -> Profile:
    fields.setdefault("platform", Platform.WINDOWS)
    fields.setdefault("intended_purpose", IntendedPurpose.SMIME_ENCRYPTION)
    if fields["platform"] == Platform.WINDOWS:
        fields.setdefault("key_storage_provider", KeyStorageProvider.TPM_OTHERWISE_SOFTWARE)
    obj = Profile.objects.create(name=name, **fields)
    for g in include:
        ProfileAssignment.objects.create(profile=obj, group=g, mode=ProfileAssignment.Mode.INCLUDE)
    for g in exclude:
        ProfileAssignment.objects.create(profile=obj, group=g, mode=ProfileAssignment.Mode.EXCLUDE)
    for i, rule in enumerate(rules):
        ApplicabilityRule.objects.create(profile=obj, position=i, **rule)
    return obj


def edition_rule(rule_type: str, *editions: str) -> dict[str, Any]:
    return {"rule_type": rule_type, "os_property": "osEdition", "editions": list(editions)}


def version_rule(rule_type: str, low: str, high: str) -> dict[str, Any]:
    return {"rule_type": rule_type, "os_property": "osVersion", "min_version": low, "max_version": high}

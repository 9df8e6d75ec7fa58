"""Targeting warnings: what an admin probably did not mean, shown on a profile's overview and the wizard's review."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.apps import apps
from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from directory.models import DirectoryUser, Group, GroupDeviceMember, GroupUserMember, Platform
from profiles.reports import Evaluation, Summary


@dataclass(frozen=True)
class Lint:
    code: str
    message: str


# --- Certificates (the certs app may not have its model yet) -----------------

# The certificate model arrives with the certs app; until then nothing holds a certificate.
CERTIFICATE_MODEL: str = "certs.Certificate"
HoldersFn = Callable[[str], QuerySet[DirectoryUser] | None]


def certificate_holders(purpose: str) -> QuerySet[DirectoryUser] | None:
    """Users holding a current certificate of ``purpose``; None while certificates are not tracked."""
    if not apps.is_installed("certs"):
        return None
    try:
        certificate = apps.get_model(CERTIFICATE_MODEL)
    except LookupError:
        return None
    if certificate._meta.db_table not in connection.introspection.table_names():
        return None  # the model exists but its migration has not run yet
    current = certificate._default_manager.filter(
        user_id=OuterRef("pk"), purpose=purpose, not_after__gt=timezone.now()
    )
    return DirectoryUser.objects.filter(Exists(current))


# --- Lint --------------------------------------------------------------------


def lint(
    evaluation: Evaluation, *, summary: Summary | None = None, holders: HoldersFn = certificate_holders
) -> list[Lint]:
    spec = evaluation.spec
    found: list[Lint] = []
    if spec.targets_users and spec.exclude_device_groups:
        found.append(
            Lint(
                "userIncludeDeviceExclude",
                "Users are targeted through user groups or All users, but the exclusions are device groups. "
                "Intune does not apply device-group exclusions to user targeting: those users' devices still "
                "get the profile. Exclude user groups instead.",
            )
        )
    if spec.targets_devices and spec.exclude_user_groups:
        found.append(
            Lint(
                "deviceIncludeUserExclude",
                "Devices are targeted through device groups or All devices, but the exclusions are user groups. "
                "Intune does not apply user-group exclusions to device targeting. Exclude device groups instead.",
            )
        )
    if spec.targets_users and spec.targets_devices:
        found.append(
            Lint(
                "mixedGroupTypes",
                "The profile targets both user and device groups. Microsoft recommends user groups for "
                "certificates; related profiles (trusted root, S/MIME) assigned to other group types can stay "
                "Pending.",
            )
        )
    all_ids = (
        spec.include_user_groups
        | spec.exclude_user_groups
        | spec.include_device_groups
        | spec.exclude_device_groups
    )
    empty = (
        Group.objects.filter(pk__in=all_ids)
        .exclude(Exists(GroupUserMember.objects.filter(group_id=OuterRef("pk"))))
        .exclude(Exists(GroupDeviceMember.objects.filter(group_id=OuterRef("pk"))))
        .values_list("display_name", flat=True)
    )
    for name in empty:
        found.append(Lint("emptyGroup", f"The group {name} has no members."))
    for name in Group.objects.filter(pk__in=spec.removed_group_ids).values_list("display_name", flat=True):
        found.append(Lint("removedGroup", f"The group {name} was removed from the directory; it is ignored."))
    summary = summary or evaluation.summary()
    holders_qs = holders(spec.intended_purpose)
    if holders_qs is not None and spec.is_assigned:
        missing = evaluation.reached_user_ids(without=holders_qs)
        count = len(missing)
        if count:
            upns = DirectoryUser.objects.filter(pk__in=sorted(missing)[:50]).order_by("upn")
            sample = ", ".join(upns.values_list("upn", flat=True)[:3])
            more = f" and {count - 3} more" if count > 3 else ""
            found.append(
                Lint(
                    "usersWithoutCertificate",
                    f"{count} targeted user{'s' if count != 1 else ''} ha{'ve' if count != 1 else 's'} no current "
                    f"certificate with the intended purpose {spec.intended_purpose}: {sample}{more}.",
                )
            )
    other_platform = summary.reasons.get("platform", 0)
    if other_platform:
        label = dict(Platform.choices).get(spec.platform, spec.platform)
        found.append(
            Lint(
                "otherPlatforms",
                f"{other_platform} targeted device{'s' if other_platform != 1 else ''} "
                f"{'are' if other_platform != 1 else 'is'} not {label} and will show as Not applicable.",
            )
        )
    return found

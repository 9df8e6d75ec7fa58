"""CSV import of group memberships: users into user groups, devices into device groups.

Like the user import (:mod:`directory.imports`), the file is checked whole and applied whole or not
at all, and importing the same file twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from django.db.models import QuerySet
from django.db.models.functions import Lower

from directory.imports import (
    FileRejected,
    ImportReport,
    parse_uuid,
    read_rows,
    save_or_report,
)
from directory.models import Device, DirectoryUser, Group, GroupDeviceMember, GroupUserMember
from portal import audit
from portal.audit import Actor
from portal.lib.csvfile import normalise_header

MEMBERSHIP_COLUMNS: dict[str, Sequence[str]] = {
    "group": ("group", "groupname", "groupobjectid", "groupid", "groupdisplayname"),
    "member": ("member", "memberobjectid", "memberid", "userprincipalname", "upn", "devicename", "deviceid"),
    "groupkind": ("groupKind", "grouptype", "kind"),
}
_KINDS = {
    "user": Group.Kind.USER,
    "usergroup": Group.Kind.USER,
    "device": Group.Kind.DEVICE,
    "devicegroup": Group.Kind.DEVICE,
}


@dataclass
class _Memberships:
    new_groups: dict[str, Group] = field(default_factory=dict)
    users: set[tuple[str, int]] = field(default_factory=set)  # (group key, user pk)
    devices: set[tuple[str, int]] = field(default_factory=set)
    groups: dict[str, Group] = field(default_factory=dict)  # group key -> group (new ones unsaved)
    names: dict[tuple[str, int], str] = field(default_factory=dict)


class _Directory:
    """Lookups for one memberships import, loaded once."""

    def __init__(self) -> None:
        self.groups = list(Group.objects.all())
        self.group_by_id = {g.object_id: g for g in self.groups}
        self.groups_by_name: dict[str, list[Group]] = {}
        for g in self.groups:
            if g.removed_at is None:
                self.groups_by_name.setdefault(g.display_name.lower(), []).append(g)

        self._users: dict[str, list[DirectoryUser]] = {}
        self._devices: dict[str, list[Device]] = {}

    def user(self, value: str) -> list[DirectoryUser]:
        key = value.lower()
        if key not in self._users:
            object_id = parse_uuid(value)
            found = (
                DirectoryUser.objects.filter(object_id=object_id)
                if object_id
                else DirectoryUser.objects.annotate(l=Lower("upn")).filter(l=key)
            )
            self._users[key] = list(found)
        return self._users[key]

    def device(self, value: str) -> list[Device]:
        key = value.lower()
        if key not in self._devices:
            device_id = parse_uuid(value)
            found = (
                Device.objects.filter(device_id=device_id)
                if device_id
                else Device.objects.filter(name__iexact=value, removed_at__isnull=True)
            )
            self._devices[key] = list(found)
        return self._devices[key]


def import_memberships_csv(actor: Actor, file: IO[bytes]) -> ImportReport:
    """Add users or devices to groups from a CSV file; a group named but not found is created."""
    report = ImportReport(kind="memberships")
    directory = _Directory()
    plan = _Memberships()
    try:
        for number, cells in read_rows(file, MEMBERSHIP_COLUMNS, required=["group", "member"]):
            report.rows += 1
            _plan_membership(number, cells, directory, plan, report)
    except FileRejected as exc:
        report.error(exc.row, exc.code, exc.message)
        return report
    if report.ok:
        save_or_report(actor, report, "Import group memberships", lambda: _save_memberships(plan, report))
    return report


def _find_group(
    number: int, cells: dict[str, str], directory: _Directory, plan: _Memberships, report: ImportReport
) -> Group | None:
    value, kind_raw = cells.get("group", ""), normalise_header(cells.get("groupkind", ""))
    kind = _KINDS.get(kind_raw)
    if kind_raw and kind is None:
        report.error(
            number,
            "invalid_group_kind",
            f"groupKind must be user or device, not \u201c{cells['groupkind'][:20]}\u201d.",
        )
        return None
    if not value:
        report.error(number, "missing_value", "The group is empty.")
        return None
    object_id = parse_uuid(value)
    if object_id:
        group = directory.group_by_id.get(object_id)
        if group is None:
            report.error(number, "unknown_group", f"No group has object id {object_id}.")
            return None
        if group.removed_at is not None:
            report.error(
                number, "group_removed", f"{group.display_name} has been removed from the directory."
            )
            return None
    else:
        matches = directory.groups_by_name.get(value.lower(), [])
        if len(matches) > 1:
            report.error(
                number, "ambiguous_group", f"{len(matches)} groups are named {value}; use the object id."
            )
            return None
        if matches:
            group = matches[0]
        else:
            if len(value) > 255:
                report.error(number, "value_too_long", "The group name is longer than 255 characters.")
                return None
            group = plan.new_groups.setdefault(
                value.lower(),
                Group(display_name=value, kind=kind or Group.Kind.USER, description="Imported from CSV."),
            )
    if kind and group.kind != kind:
        report.error(
            number, "wrong_group_kind", f"{group.display_name} is a {group.get_kind_display().lower()}."
        )
        return None
    return group


def _plan_membership(
    number: int, cells: dict[str, str], directory: _Directory, plan: _Memberships, report: ImportReport
) -> None:
    group = _find_group(number, cells, directory, plan, report)
    member = cells.get("member", "")
    if not member:
        report.error(number, "missing_value", "The member is empty.")
    if group is None or not member:
        return
    found: Sequence[DirectoryUser | Device]
    if group.kind == Group.Kind.USER:
        found, noun = directory.user(member), "user"
    else:
        found, noun = directory.device(member), "device"
    if not found:
        report.error(
            number,
            "unknown_member",
            f"No {noun} matches \u201c{member[:80]}\u201d ({group.display_name} is a {noun} group).",
        )
        return
    if len(found) > 1:
        report.error(
            number, "ambiguous_member", f"{len(found)} devices are named {member}; use the device id."
        )
        return
    if found[0].removed_at is not None:
        report.error(number, "member_removed", f"{found[0]} has been removed from the directory.")
        return
    key = str(group.object_id)
    plan.groups[key] = group
    pair = (key, found[0].pk)
    pairs = plan.users if noun == "user" else plan.devices
    if pair in pairs:
        report.unchanged += 1  # the same membership twice in the file
    pairs.add(pair)
    plan.names[(noun + key, found[0].pk)] = str(found[0])


def _save_memberships(plan: _Memberships, report: ImportReport) -> list[dict[str, Any]]:
    resources = []
    for group in plan.new_groups.values():
        group.save()
        resources.append(
            audit.resource(
                group,
                type="Group",
                id=str(group.object_id),
                changes=audit.changes({}, audit.snapshot(group, ("display_name", "kind"))),
            )
        )
    report.groups_created = len(plan.new_groups)
    added: dict[str, list[str]] = {}
    new_users = _new_pairs(
        plan, plan.users, GroupUserMember.objects.values_list("group_id", "user_id"), report
    )
    GroupUserMember.objects.bulk_create(
        GroupUserMember(group_id=plan.groups[key].pk, user_id=pk) for key, pk in new_users
    )
    new_devices = _new_pairs(
        plan, plan.devices, GroupDeviceMember.objects.values_list("group_id", "device_id"), report
    )
    GroupDeviceMember.objects.bulk_create(
        GroupDeviceMember(group_id=plan.groups[key].pk, device_id=pk) for key, pk in new_devices
    )
    for noun, new in (("user", new_users), ("device", new_devices)):
        for key, pk in new:
            added.setdefault(key, []).append(plan.names[(noun + key, pk)])
    for key, names in added.items():
        group = plan.groups[key]
        resources.append(
            audit.resource(
                group,
                type="Group",
                id=str(group.object_id),
                changes=[{"field": "members added", "old": None, "new": sorted(names)}],
            )
        )
    return resources


def _new_pairs(
    plan: _Memberships,
    pairs: set[tuple[str, int]],
    existing: QuerySet[Any, tuple[Any, Any]],
    report: ImportReport,
) -> list[tuple[str, int]]:
    """The (group key, member pk) pairs not yet in the database; counts the others as unchanged."""
    group_ids = {plan.groups[key].pk for key, _ in pairs}
    have = set(existing.filter(group_id__in=group_ids))
    new = [(key, pk) for key, pk in sorted(pairs) if (plan.groups[key].pk, pk) not in have]
    report.unchanged += len(pairs) - len(new)
    report.created += len(new)
    return new

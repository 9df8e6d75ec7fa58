"""Applying a snapshot of Entra ID and Intune to the directory: users, groups with their members, and
managed devices.

Rows are updated in place, new ones created, and those the snapshot no longer lists get
``removed_at``, with set-based statements (bulk inserts and updates in batches), however large the
tenant.

Users are the exception to removal: a user imported from CSV never came from Entra ID, so the
snapshot leaves them alone (unless it lists them, by object id or UPN, and then they become Entra
users); and a user gone from Entra ID who still holds certificates is flagged for review
(``missing_from_entra_at``) instead of removed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from directory.models import Device, DirectoryUser, Group, GroupDeviceMember, GroupUserMember, UserSource
from portal import audit

_BATCH = 500


@dataclass(frozen=True)
class EntraUser:
    object_id: uuid.UUID
    upn: str
    display_name: str
    given_name: str = ""
    surname: str = ""
    mail: str = ""
    proxy_addresses: tuple[str, ...] = ()
    department: str = ""
    job_title: str = ""
    account_enabled: bool = True


@dataclass(frozen=True)
class ManagedDevice:
    device_id: uuid.UUID
    name: str
    platform: str
    os_version: str = ""
    manufacturer: str = ""
    model: str = ""
    serial_number: str = ""
    ownership: str = Device.Ownership.CORPORATE
    last_check_in: dt.datetime | None = None
    primary_user: uuid.UUID | None = None  # the user's object id


@dataclass(frozen=True)
class EntraGroup:
    object_id: uuid.UUID
    display_name: str
    description: str = ""
    users: frozenset[uuid.UUID] = frozenset()  # object ids of member users
    devices: frozenset[uuid.UUID] = frozenset()  # device ids of member devices


@dataclass(frozen=True)
class Snapshot:
    """Everything Entra ID and Intune list, read before anything is written."""

    users: Sequence[EntraUser] = ()
    groups: Sequence[EntraGroup] = ()
    devices: Sequence[ManagedDevice] = ()


@dataclass
class Applied:
    now: dt.datetime
    counts: dict[str, int] = field(default_factory=dict)
    # Users gone from Entra ID who hold certificates, flagged for review by this snapshot.
    flagged: list[DirectoryUser] = field(default_factory=list)

    def audit_resources(self) -> list[dict[str, Any]]:
        return [
            audit.resource(
                type="User",
                id=str(user.object_id),
                name=user.upn,
                changes=[{"field": "missing_from_entra_at", "old": None, "new": self.now}],
            )
            for user in self.flagged
        ]


@transaction.atomic
def apply_entra_snapshot(snapshot: Snapshot, *, now: dt.datetime) -> Applied:
    """Make the directory what ``snapshot`` lists. Call it inside the transaction that records the
    sync in the audit log (with :meth:`Applied.audit_resources`), so the two land together."""
    applied = Applied(now=now)
    applied.counts, applied.flagged = _users(snapshot.users, now)
    applied.counts |= _devices(snapshot.devices, now)
    applied.counts |= _groups(snapshot.groups, now)
    return applied


def _apply(obj: Any, values: dict[str, Any]) -> set[str]:
    """Set ``values`` on ``obj``; the names of those that changed."""
    changed = {name for name, value in values.items() if getattr(obj, name) != value}
    for name in changed:
        setattr(obj, name, values[name])
    return changed


def _chunks[T](values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), _BATCH):
        yield values[start : start + _BATCH]


def _last_of_each[T](items: Iterable[T], key: str) -> list[T]:
    # Listed twice, the later listing wins (as if applied one after the other).
    return list({getattr(item, key): item for item in items}.values())


# --- Users ---------------------------------------------------------------------------


def _adopt_by_upn(
    existing: dict[uuid.UUID, DirectoryUser], listed: dict[str, uuid.UUID]
) -> list[DirectoryUser]:
    """A user imported from CSV (or seeded) under another object id whom Entra ID lists by the same
    UPN is that Entra user: the row takes Entra's object id, keeping its certificates and history.
    Done before UPNs are parked, which would otherwise put them aside as a leaver."""
    listed_ids = set(listed.values())
    adopted = []
    for user in list(existing.values()):
        entra_id = listed.get(user.upn.lower())
        if (
            user.source == UserSource.ENTRA
            or entra_id is None
            or entra_id == user.object_id
            or entra_id in existing
            or user.object_id in listed_ids
        ):
            continue
        del existing[user.object_id]
        user.object_id = entra_id
        existing[entra_id] = user
        adopted.append(user)
    return adopted


def _park_taken_upns(
    existing: dict[uuid.UUID, DirectoryUser], wanted: dict[str, uuid.UUID]
) -> list[DirectoryUser]:
    """Free the UPNs that Entra ID now gives to another object: a new account reusing a leaver's UPN,
    or two accounts swapping theirs. The old holder keeps its certificates and history under a
    marked UPN (a renamed account gets its new one right after)."""
    parked = []
    for user in existing.values():
        holder = wanted.get(user.upn.lower())
        if holder is not None and holder != user.object_id:
            user.upn = f"{user.upn} (reassigned {user.object_id.hex[:8]})"[:255]
            parked.append(user)
    return parked


def _users(items: Sequence[EntraUser], now: dt.datetime) -> tuple[dict[str, int], list[DirectoryUser]]:
    listed = _last_of_each(items, "object_id")
    existing = {u.object_id: u for u in DirectoryUser.objects.all()}
    upns = {entry.upn.lower(): entry.object_id for entry in listed}
    DirectoryUser.objects.bulk_update(_adopt_by_upn(existing, upns), ["object_id"], batch_size=_BATCH)
    # Parked in statements of their own, before any row takes a freed UPN: the unique index on the
    # UPN is checked row by row within a statement.
    parked = _park_taken_upns(existing, upns)
    DirectoryUser.objects.bulk_update(parked, ["upn"], batch_size=_BATCH)
    created: list[DirectoryUser] = []
    updated: list[DirectoryUser] = []
    fields = {"updated_at"}
    found = 0
    for entry in listed:
        values = {
            "upn": entry.upn,
            "display_name": entry.display_name,
            "given_name": entry.given_name,
            "surname": entry.surname,
            "mail": entry.mail,
            "proxy_addresses": list(entry.proxy_addresses),
            "department": entry.department,
            "job_title": entry.job_title,
            "account_enabled": entry.account_enabled,
            "source": UserSource.ENTRA,
            "removed_at": None,
            "missing_from_entra_at": None,
        }
        user = existing.get(entry.object_id)
        if user is None:
            created.append(DirectoryUser(object_id=entry.object_id, **values))
            continue
        found += user.source == UserSource.CSV
        if changed := _apply(user, values):
            user.updated_at = now
            updated.append(user)
            fields |= changed
    DirectoryUser.objects.bulk_create(created, batch_size=_BATCH)
    DirectoryUser.objects.bulk_update(updated, sorted(fields), batch_size=_BATCH)
    # Only users that came from Entra ID (or stand in for it) can have left it.
    gone = (
        DirectoryUser.objects.filter(removed_at__isnull=True)
        .exclude(source=UserSource.CSV)
        .exclude(object_id__in=[entry.object_id for entry in listed])
    )
    holders = gone.filter(certificates__isnull=False).distinct()
    flagged = list(holders.filter(missing_from_entra_at__isnull=True))
    for chunk in _chunks([u.pk for u in flagged]):
        DirectoryUser.objects.filter(pk__in=chunk).update(missing_from_entra_at=now)
    removed = gone.exclude(pk__in=holders.values("pk")).update(removed_at=now, missing_from_entra_at=None)
    return {
        "users created": len(created),
        "users updated": len(updated),
        "users removed": removed,
        "users gone from Entra ID with certificates (to review)": holders.count(),
        "users imported from CSV found in Entra ID": found,
        "user principal names reassigned": len(parked),
    }, flagged


# --- Devices -------------------------------------------------------------------------


def _devices(items: Sequence[ManagedDevice], now: dt.datetime) -> dict[str, int]:
    listed = _last_of_each(items, "device_id")
    existing = {d.device_id: d for d in Device.objects.all()}
    users = dict(DirectoryUser.objects.values_list("object_id", "pk"))
    created: list[Device] = []
    updated: list[Device] = []
    fields = {"updated_at"}
    for entry in listed:
        values = {
            "name": entry.name,
            "platform": entry.platform,
            "manufacturer": entry.manufacturer,
            "model": entry.model,
            "serial_number": entry.serial_number,
            "ownership": entry.ownership,
            "last_check_in": entry.last_check_in,
            "primary_user_id": users.get(entry.primary_user) if entry.primary_user else None,
            "removed_at": None,
        }
        device = existing.get(entry.device_id)
        if device is None:
            device = Device(device_id=entry.device_id, **values)
            device.set_os_version(entry.os_version)
            created.append(device)
            continue
        changed = _apply(device, values)
        if device.os_version != entry.os_version:
            device.set_os_version(entry.os_version)
            changed |= {"os_version", "os_version_key"}
        if changed:
            device.updated_at = now
            updated.append(device)
            fields |= changed
    Device.objects.bulk_create(created, batch_size=_BATCH)
    Device.objects.bulk_update(updated, sorted(fields), batch_size=_BATCH)
    removed = (
        Device.objects.filter(removed_at__isnull=True)
        .exclude(device_id__in=[entry.device_id for entry in listed])
        .update(removed_at=now)
    )
    return {"devices created": len(created), "devices updated": len(updated), "devices removed": removed}


# --- Groups and their members --------------------------------------------------------


def _groups(items: Sequence[EntraGroup], now: dt.datetime) -> dict[str, int]:
    listed = _last_of_each(items, "object_id")
    existing = {g.object_id: g for g in Group.objects.all()}
    user_pks = dict(DirectoryUser.objects.values_list("object_id", "pk"))
    device_pks = dict(Device.objects.values_list("device_id", "pk"))
    wanted: dict[uuid.UUID, tuple[set[int], set[int]]] = {}
    created: list[Group] = []
    updated: list[Group] = []
    fields = {"updated_at"}
    for entry in listed:
        users = {user_pks[u] for u in entry.users if u in user_pks}
        devices = {device_pks[d] for d in entry.devices if d in device_pks}
        wanted[entry.object_id] = users, devices
        values = {
            "display_name": entry.display_name,
            "description": entry.description[:1000],
            "removed_at": None,
        }
        group = existing.get(entry.object_id)
        if group is None:
            kind = Group.Kind.DEVICE if devices and not users else Group.Kind.USER
            created.append(Group(object_id=entry.object_id, kind=kind, **values))
        elif changed := _apply(group, values):
            group.updated_at = now
            updated.append(group)
            fields |= changed
    Group.objects.bulk_create(created, batch_size=_BATCH)
    Group.objects.bulk_update(updated, sorted(fields), batch_size=_BATCH)
    group_pks = {
        object_id: pk for object_id, pk in Group.objects.values_list("object_id", "pk") if object_id in wanted
    }
    wanted_users = {(group_pks[g], pk) for g, (users, _) in wanted.items() for pk in users}
    wanted_devices = {(group_pks[g], pk) for g, (_, devices) in wanted.items() for pk in devices}
    # Only the listed groups' members change; a group Entra ID no longer lists keeps its members.
    groups = set(group_pks.values())
    stale_users, new_users = _changes(
        GroupUserMember.objects.values_list("pk", "group_id", "user_id"), groups, wanted_users
    )
    stale_devices, new_devices = _changes(
        GroupDeviceMember.objects.values_list("pk", "group_id", "device_id"), groups, wanted_devices
    )
    dropped = 0
    for chunk in _chunks(stale_users):
        dropped += GroupUserMember.objects.filter(pk__in=chunk).delete()[0]
    for chunk in _chunks(stale_devices):
        dropped += GroupDeviceMember.objects.filter(pk__in=chunk).delete()[0]
    GroupUserMember.objects.bulk_create(
        [GroupUserMember(group_id=g, user_id=u) for g, u in new_users], batch_size=_BATCH
    )
    GroupDeviceMember.objects.bulk_create(
        [GroupDeviceMember(group_id=g, device_id=d) for g, d in new_devices], batch_size=_BATCH
    )
    removed = (
        Group.objects.filter(removed_at__isnull=True)
        .exclude(object_id__in=[entry.object_id for entry in listed])
        .update(removed_at=now)
    )
    return {
        "groups created": len(created),
        "groups updated": len(updated),
        "groups removed": removed,
        "memberships added": len(new_users) + len(new_devices),
        "memberships removed": dropped,
    }


def _changes(
    rows: Iterable[tuple[int, int, int]], groups: set[int], wanted: set[tuple[int, int]]
) -> tuple[list[int], list[tuple[int, int]]]:
    """From the (pk, group pk, member pk) membership ``rows``: the pks of those of ``groups`` not
    ``wanted``, and the (group pk, member pk) pairs ``wanted`` not there yet."""
    current = {(group, member): pk for pk, group, member in rows if group in groups}
    return [pk for pair, pk in current.items() if pair not in wanted], [
        pair for pair in wanted if pair not in current
    ]

"""Directory sync: users, groups with their members, and managed devices from Graph v1.0.

Everything is read first (every page), then written in one transaction: rows are
updated in place, new ones created, and those Graph no longer lists get ``removed_at``.

Users are the exception to removal: a user imported from CSV never came from Entra ID,
so the sync leaves them alone (unless it finds them, by object id or UPN, and then they
become Entra users); and a user gone from Entra ID who still holds certificates is
flagged for review (``missing_from_entra_at``) instead of removed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from directory.models import (
    Device,
    DirectoryUser,
    Group,
    GroupDeviceMember,
    GroupUserMember,
    Platform,
    UserSource,
)
from graph import services
from graph.client import GraphClient, GraphError
from graph.models import SyncRun
from portal import audit
from portal.models import AuditEvent

CATEGORY = "Directory"
USER_FIELDS = "id,userPrincipalName,displayName,givenName,surname,mail,proxyAddresses,department,jobTitle,accountEnabled"
DEVICE_FIELDS = (
    "id,azureADDeviceId,deviceName,operatingSystem,osVersion,deviceType,deviceEnrollmentType,manufacturer,model,"
    "serialNumber,managedDeviceOwnerType,lastSyncDateTime,userId"
)


def start(actor: audit.Actor) -> SyncRun:
    from graph import tasks

    with transaction.atomic():
        sync_run = SyncRun.objects.create(trigger=SyncRun.Trigger.MANUAL, started_by_name=actor.name)
        audit.record(
            actor,
            activity="Start directory sync",
            category=CATEGORY,
            operation=AuditEvent.Operation.ACTION,
            resources=[audit.resource(sync_run, type="Directory sync", id=str(sync_run.code))],
        )
        transaction.on_commit(lambda: tasks.sync_directory.delay(sync_run.pk))
    return sync_run


def run(run_id: int | None = None, *, client: GraphClient | None = None) -> SyncRun:
    if run_id is None:
        sync_run = SyncRun.objects.create(trigger=SyncRun.Trigger.SCHEDULE, started_by_name="schedule")
    else:
        sync_run = SyncRun.objects.get(pk=run_id)
        if sync_run.state != SyncRun.State.RUNNING:
            return sync_run
    try:
        client = client or services.connected_client()
        users = list(client.all(f"/v1.0/users?$select={USER_FIELDS}&$top=999"))
        groups = list(client.all("/v1.0/groups?$select=id,displayName,description&$top=999"))
        members = {g["id"]: list(client.all(f"/v1.0/groups/{g['id']}/members?$top=999")) for g in groups}
        devices = list(client.all(f"/v1.0/deviceManagement/managedDevices?$select={DEVICE_FIELDS}&$top=999"))
    except (GraphError, services.NotConnected) as exc:
        error = (
            exc.to_json() | {"summary": exc.summary()}
            if isinstance(exc, GraphError)
            else {"summary": str(exc)}
        )
        SyncRun.objects.filter(pk=sync_run.pk).update(
            state=SyncRun.State.FAILED, finished_at=timezone.now(), error=error
        )
        sync_run.refresh_from_db()
        return sync_run
    with transaction.atomic():
        now = timezone.now()
        counts: dict[str, int] = {}
        user_counts, flagged = _users(users, now)
        counts |= user_counts
        counts |= _devices(devices, now)
        counts |= _groups(groups, members, now)
        SyncRun.objects.filter(pk=sync_run.pk).update(
            state=SyncRun.State.DONE, finished_at=now, counts=counts
        )
        audit.record(
            audit.Actor.system("Directory sync"),
            activity="Sync directory from Microsoft Graph",
            category=CATEGORY,
            operation=AuditEvent.Operation.UPDATE,
            resources=[
                audit.resource(
                    type="Directory sync",
                    id=str(sync_run.code),
                    name=str(sync_run),
                    changes=[{"field": k, "old": None, "new": v} for k, v in counts.items()],
                ),
                *(
                    audit.resource(
                        type="User",
                        id=str(user.object_id),
                        name=user.upn,
                        changes=[{"field": "missing_from_entra_at", "old": None, "new": now}],
                    )
                    for user in flagged
                ),
            ],
        )
    sync_run.refresh_from_db()
    return sync_run


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _apply(obj: Any, values: dict[str, Any]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def _park_taken_upns(existing: dict[uuid.UUID, DirectoryUser], wanted: dict[str, uuid.UUID]) -> int:
    """Free the UPNs that Graph now gives to another object: a new account reusing a leaver's UPN,
    or two accounts swapping theirs. The old holder keeps its certificates and history under a
    marked UPN (a renamed account gets its new one right after)."""
    parked = 0
    for user in existing.values():
        holder = wanted.get(user.upn.lower())
        if holder is not None and holder != user.object_id:
            user.upn = f"{user.upn} (reassigned {user.object_id.hex[:8]})"[:255]
            user.save(update_fields=["upn"])
            parked += 1
    return parked


def _adopt_by_upn(existing: dict[uuid.UUID, DirectoryUser], listed: dict[str, uuid.UUID]) -> None:
    """A user imported from CSV (or seeded) under another object id whom Entra ID lists by the same
    UPN is that Entra user: the row takes Entra's object id, keeping its certificates and history.
    Done before UPNs are parked, which would otherwise put them aside as a leaver."""
    listed_ids = set(listed.values())
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
        user.save(update_fields=["object_id"])
        existing[entra_id] = user


def _users(items: Iterable[dict[str, Any]], now: dt.datetime) -> tuple[dict[str, int], list[DirectoryUser]]:
    existing = {u.object_id: u for u in DirectoryUser.objects.all()}
    listed = [
        (object_id, item)
        for item in items
        if (object_id := _uuid(item.get("id"))) is not None and item.get("userPrincipalName")
    ]
    upns = {item["userPrincipalName"].lower(): oid for oid, item in listed}
    _adopt_by_upn(existing, upns)
    parked = _park_taken_upns(existing, upns)
    seen: set[uuid.UUID] = set()
    created = updated = found = 0
    for object_id, item in listed:
        seen.add(object_id)
        values = {
            "upn": item["userPrincipalName"],
            "display_name": item.get("displayName") or item["userPrincipalName"],
            "given_name": item.get("givenName") or "",
            "surname": item.get("surname") or "",
            "mail": item.get("mail") or "",
            "proxy_addresses": list(item.get("proxyAddresses") or []),
            "department": item.get("department") or "",
            "job_title": item.get("jobTitle") or "",
            "account_enabled": bool(item.get("accountEnabled", True)),
            "source": UserSource.ENTRA,
            "removed_at": None,
            "missing_from_entra_at": None,
        }
        user = existing.get(object_id)
        if user is None:
            DirectoryUser.objects.create(object_id=object_id, **values)
            created += 1
        else:
            found += user.source == UserSource.CSV
            if _apply(user, values):
                user.save()
                updated += 1
    # Only users that came from Entra ID (or stand in for it) can have left it.
    gone = (
        DirectoryUser.objects.filter(removed_at__isnull=True)
        .exclude(source=UserSource.CSV)
        .exclude(object_id__in=seen)
    )
    holders = gone.filter(certificates__isnull=False).distinct()
    flagged = list(holders.filter(missing_from_entra_at__isnull=True))
    DirectoryUser.objects.filter(pk__in=[u.pk for u in flagged]).update(missing_from_entra_at=now)
    removed = gone.exclude(pk__in=holders.values("pk")).update(removed_at=now, missing_from_entra_at=None)
    return {
        "users created": created,
        "users updated": updated,
        "users removed": removed,
        "users gone from Entra ID with certificates (to review)": holders.count(),
        "users imported from CSV found in Entra ID": found,
        "user principal names reassigned": parked,
    }, flagged


def _platform(item: dict[str, Any]) -> str:
    os_name = str(item.get("operatingSystem") or "").lower()
    kind = str(item.get("deviceType") or "")
    if kind in Platform.values:
        return kind
    if os_name.startswith("windows"):
        return Platform.WINDOWS
    if os_name in {"ios", "ipados"}:
        return Platform.IOS
    if os_name == "macos":
        return Platform.MACOS
    enrollment = str(item.get("deviceEnrollmentType") or "").lower()
    if "workprofile" in enrollment or "androidforwork" in kind.lower():
        return Platform.ANDROID_WORK_PROFILE
    if "androidenterprise" in enrollment:
        return Platform.ANDROID_FULLY_MANAGED
    return Platform.ANDROID_DEVICE_ADMIN


def _devices(items: Iterable[dict[str, Any]], now: dt.datetime) -> dict[str, int]:
    existing = {d.device_id: d for d in Device.objects.all()}
    users = dict(DirectoryUser.objects.values_list("object_id", "pk"))
    seen: set[uuid.UUID] = set()
    created = updated = 0
    for item in items:
        device_id = _uuid(item.get("azureADDeviceId")) or _uuid(item.get("id"))
        if device_id is None:
            continue
        seen.add(device_id)
        owner = _uuid(item.get("userId"))
        last = item.get("lastSyncDateTime")
        values = {
            "name": item.get("deviceName") or "",
            "platform": _platform(item),
            "manufacturer": item.get("manufacturer") or "",
            "model": item.get("model") or "",
            "serial_number": item.get("serialNumber") or "",
            "ownership": Device.Ownership.PERSONAL
            if item.get("managedDeviceOwnerType") == "personal"
            else Device.Ownership.CORPORATE,
            "last_check_in": dt.datetime.fromisoformat(last.replace("Z", "+00:00")) if last else None,
            "primary_user_id": users.get(owner) if owner else None,
            "removed_at": None,
        }
        device = existing.get(device_id)
        if device is None:
            device = Device(device_id=device_id, **values)
            device.set_os_version(item.get("osVersion") or "")
            device.save()
            created += 1
            continue
        changed = _apply(device, values)
        if device.os_version != (item.get("osVersion") or ""):
            device.set_os_version(item.get("osVersion") or "")
            changed = True
        if changed:
            device.save()
            updated += 1
    removed = (
        Device.objects.filter(removed_at__isnull=True).exclude(device_id__in=seen).update(removed_at=now)
    )
    return {"devices created": created, "devices updated": updated, "devices removed": removed}


def _groups(
    items: list[dict[str, Any]], members: dict[str, list[dict[str, Any]]], now: dt.datetime
) -> dict[str, int]:
    existing = {g.object_id: g for g in Group.objects.all()}
    user_pks = dict(DirectoryUser.objects.values_list("object_id", "pk"))
    device_pks = dict(Device.objects.values_list("device_id", "pk"))
    seen: set[uuid.UUID] = set()
    created = updated = added = dropped = 0
    for item in items:
        object_id = _uuid(item.get("id"))
        if object_id is None:
            continue
        seen.add(object_id)
        group_members = members.get(item["id"], [])
        wanted_users = {
            user_pks[u]
            for m in group_members
            if m.get("@odata.type") == "#microsoft.graph.user" and (u := _uuid(m.get("id"))) in user_pks
        }
        wanted_devices = {
            device_pks[d]
            for m in group_members
            if m.get("@odata.type") == "#microsoft.graph.device"
            and (d := _uuid(m.get("deviceId"))) in device_pks
        }
        values = {
            "display_name": item.get("displayName") or "",
            "description": (item.get("description") or "")[:1000],
            "removed_at": None,
        }
        group = existing.get(object_id)
        if group is None:
            kind = Group.Kind.DEVICE if wanted_devices and not wanted_users else Group.Kind.USER
            group = Group.objects.create(object_id=object_id, kind=kind, **values)
            created += 1
        elif _apply(group, values):
            group.save()
            updated += 1
        current_users = set(GroupUserMember.objects.filter(group=group).values_list("user_id", flat=True))
        current_devices = set(
            GroupDeviceMember.objects.filter(group=group).values_list("device_id", flat=True)
        )
        dropped += GroupUserMember.objects.filter(
            group=group, user_id__in=current_users - wanted_users
        ).delete()[0]
        dropped += GroupDeviceMember.objects.filter(
            group=group, device_id__in=current_devices - wanted_devices
        ).delete()[0]
        GroupUserMember.objects.bulk_create(
            [GroupUserMember(group=group, user_id=pk) for pk in wanted_users - current_users]
        )
        GroupDeviceMember.objects.bulk_create(
            [GroupDeviceMember(group=group, device_id=pk) for pk in wanted_devices - current_devices]
        )
        added += len(wanted_users - current_users) + len(wanted_devices - current_devices)
    removed = Group.objects.filter(removed_at__isnull=True).exclude(object_id__in=seen).update(removed_at=now)
    return {
        "groups created": created,
        "groups updated": updated,
        "groups removed": removed,
        "memberships added": added,
        "memberships removed": dropped,
    }


def latest() -> SyncRun | None:
    return SyncRun.objects.first()

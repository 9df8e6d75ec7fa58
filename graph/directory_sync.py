"""Directory sync: read users, groups with their members, and managed devices from Graph v1.0, and hand
that snapshot to the directory (:func:`directory.snapshot.apply_entra_snapshot`).

Everything is read first (every page), then applied in one transaction together with the end of the
run and its audit row.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from directory.models import Device, Platform
from directory.snapshot import EntraGroup, EntraUser, ManagedDevice, Snapshot, apply_entra_snapshot
from graph import connection
from graph.client import GraphClient, GraphError
from graph.endpoints import DEVICE_FIELDS, DEVICE_KIND_FIELDS, GROUP_FIELDS, USER_FIELDS
from graph.models import SyncRun
from portal import audit
from portal.lib import runs
from portal.lib.refusal import Refused
from portal.models import AuditEvent

RUNS = runs.RunKind(
    model=SyncRun,
    noun="Directory sync",
    category="Directory",
    start_activity="Start directory sync",
    finish_activity="Sync directory from Microsoft Graph",
    finish_operation=AuditEvent.Operation.UPDATE,
    worker="Directory sync",
)


def start(actor: audit.Actor) -> tuple[SyncRun, bool]:
    """An on-demand sync: recorded now, carried out by a worker. While one runs, that one (and False)."""
    from graph import tasks

    return RUNS.start(actor, tasks.sync_directory.delay)


def run(run_id: int | None = None, *, client: GraphClient | None = None) -> SyncRun:
    sync_run, go = RUNS.begin(run_id)
    if not go:
        return sync_run
    try:
        snapshot = read_snapshot(client or connection.connected_client())
    except (GraphError, Refused) as exc:
        return RUNS.fail(sync_run, connection.failure(exc))
    with transaction.atomic():
        now = timezone.now()
        applied = apply_entra_snapshot(snapshot, now=now)
        return RUNS.finish(sync_run, applied.counts, now=now, resources=applied.audit_resources())


def read_snapshot(client: GraphClient) -> Snapshot:
    """Every user, group with its members, and managed device Graph lists, every page."""
    users = list(client.all(f"/v1.0/users?$select={USER_FIELDS}&$top=999"))
    groups = list(client.all(f"/v1.0/groups?$select={GROUP_FIELDS}&$top=999"))
    members = {g["id"]: list(client.all(f"/v1.0/groups/{g['id']}/members?$top=999")) for g in groups}
    devices = list(client.all(f"/v1.0/deviceManagement/managedDevices?$select={DEVICE_FIELDS}&$top=999"))
    # Which kind of Android enrollment a device has is only in beta (deviceType and the Android
    # Enterprise enrollment types); v1.0 answers 400 to a $select of deviceType.
    kinds = {
        item.get("id"): item
        for item in client.all(f"/beta/deviceManagement/managedDevices?$select={DEVICE_KIND_FIELDS}&$top=999")
    }
    devices = [{**item, **kinds.get(item.get("id"), {})} for item in devices]
    return Snapshot(
        users=[user for item in users if (user := _user(item)) is not None],
        groups=[group for item in groups if (group := _group(item, members.get(item["id"], []))) is not None],
        devices=[device for item in devices if (device := _device(item)) is not None],
    )


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _user(item: dict[str, Any]) -> EntraUser | None:
    object_id = _uuid(item.get("id"))
    upn = item.get("userPrincipalName")
    if object_id is None or not upn:
        return None
    return EntraUser(
        object_id=object_id,
        upn=upn,
        display_name=item.get("displayName") or upn,
        given_name=item.get("givenName") or "",
        surname=item.get("surname") or "",
        mail=item.get("mail") or "",
        proxy_addresses=tuple(item.get("proxyAddresses") or ()),
        department=item.get("department") or "",
        job_title=item.get("jobTitle") or "",
        account_enabled=bool(item.get("accountEnabled", True)),
    )


def _group(item: dict[str, Any], members: list[dict[str, Any]]) -> EntraGroup | None:
    object_id = _uuid(item.get("id"))
    if object_id is None:
        return None
    return EntraGroup(
        object_id=object_id,
        display_name=item.get("displayName") or "",
        description=item.get("description") or "",
        users=frozenset(
            u
            for m in members
            if m.get("@odata.type") == "#microsoft.graph.user" and (u := _uuid(m.get("id"))) is not None
        ),
        devices=frozenset(
            d
            for m in members
            if m.get("@odata.type") == "#microsoft.graph.device"
            and (d := _uuid(m.get("deviceId"))) is not None
        ),
    )


def _platform(item: dict[str, Any]) -> str:
    os_name = str(item.get("operatingSystem") or "").lower()
    kind = str(item.get("deviceType") or "").lower()
    if os_name.startswith("windows"):
        return Platform.WINDOWS
    if os_name in {"ios", "ipados"}:
        return Platform.IOS
    if os_name == "macos":
        return Platform.MACOS
    enrollment = str(item.get("deviceEnrollmentType") or "").lower()
    if kind == "androidforwork":
        return Platform.ANDROID_WORK_PROFILE
    if kind == "androidenterprise" or enrollment.startswith("androidenterprise"):
        return Platform.ANDROID_FULLY_MANAGED
    return Platform.ANDROID_DEVICE_ADMIN


def _device(item: dict[str, Any]) -> ManagedDevice | None:
    device_id = _uuid(item.get("azureADDeviceId")) or _uuid(item.get("id"))
    if device_id is None:
        return None
    last = item.get("lastSyncDateTime")
    return ManagedDevice(
        device_id=device_id,
        name=item.get("deviceName") or "",
        platform=_platform(item),
        os_version=item.get("osVersion") or "",
        manufacturer=item.get("manufacturer") or "",
        model=item.get("model") or "",
        serial_number=item.get("serialNumber") or "",
        ownership=Device.Ownership.PERSONAL
        if item.get("managedDeviceOwnerType") == "personal"
        else Device.Ownership.CORPORATE,
        last_check_in=dt.datetime.fromisoformat(last.replace("Z", "+00:00")) if last else None,
        primary_user=_uuid(item.get("userId")),
    )

"""What the Graph emulator holds in memory: its settings, counters, the directory and the PFX records."""

from __future__ import annotations

import datetime as dt
import random
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Config:
    """What a test or the demo may tune while the emulator runs."""

    tenant_id: str = "00000000-0000-0000-0000-0000000c0de0"
    client_id: str = "11111111-2222-3333-4444-555555555555"
    client_secret: str = "emulator-secret"
    page_size: int = 50
    # Writes (POST/PATCH/DELETE) allowed per window, per app and tenant; 0 turns throttling off.
    write_limit: int = 100
    write_window: float = 20.0
    # How a 429 says when to come back: "seconds" (Retry-After), "ms" (x-ms-retry-after-ms), "none".
    retry_after: str = "seconds"
    write_latency: float = 0.0
    # Reads (GET) allowed per window, per app and tenant; 0 (the default) turns read throttling off.
    # Intune documents 1000 requests per 20 s per app and tenant for device configuration.
    read_limit: int = 0
    read_window: float = 20.0
    # Seconds between storing a new record and answering: a client may die in between.
    create_answer_delay: float = 0.0
    # The next this-many DELETEs answer 204 but keep the record (Intune has been seen doing this).
    ignored_deletes: int = 0
    token_lifetime: int = 3599
    # The next this-many successful writes are carried out but answered with this status instead.
    lost_answers: int = 0
    lost_answer_status: int = 504
    # Share of writes that fail at random: half answered 503 without being carried out, half
    # carried out with the answer lost (502 or 504). Seeded, so a run can be repeated.
    fault_rate: float = 0.0
    fault_seed: int = 1


@dataclass
class Stats:
    tokens: int = 0
    posts: int = 0
    creates: int = 0
    conflicts: int = 0
    patches: int = 0
    deletes: int = 0
    lost_answers: int = 0
    refused_faults: int = 0
    # Writes the service accepted into its window (every POST/PATCH/DELETE not answered 429).
    writes: int = 0
    profile_creates: int = 0
    profile_patches: int = 0
    assigns: int = 0
    throttled: int = 0
    reads: int = 0
    read_throttled: int = 0
    bad_requests: int = 0
    requests: int = 0
    first_write: float = 0.0
    last_write: float = 0.0


BUILT_IN_TAGS = {
    "0": {"id": "0", "displayName": "Default", "description": "Built-in scope tag", "isBuiltIn": True}
}


@dataclass
class Token:
    expires: float


@dataclass
class State:
    """Everything the emulator knows; guarded by ``lock``."""

    config: Config = field(default_factory=Config)
    stats: Stats = field(default_factory=Stats)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    read_times: deque[float] = field(default_factory=deque)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    pfx: dict[str, dict[str, Any]] = field(default_factory=dict)
    # deviceConfigurations by id, their assignments, and what devices report about them.
    configurations: dict[str, dict[str, Any]] = field(default_factory=dict)
    assignments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    device_statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    user_statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    certificate_states: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    scope_tags: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(BUILT_IN_TAGS))
    connector_details: list[dict[str, Any]] = field(default_factory=list)
    ndes_connectors: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, Token] = field(default_factory=dict)
    writes: deque[float] = field(default_factory=deque)
    lock: threading.RLock = field(default_factory=threading.RLock)
    random: random.Random = field(default_factory=lambda: random.Random(1))

    def __post_init__(self) -> None:
        self.random.seed(self.config.fault_seed)

    def user_by_upn(self, upn: str) -> dict[str, Any] | None:
        lowered = upn.lower()
        return next((u for u in self.users.values() if u["userPrincipalName"].lower() == lowered), None)

    def reset_certificates(self) -> None:
        with self.lock:
            self.pfx.clear()
            self.configurations.clear()
            self.assignments.clear()
            self.device_statuses.clear()
            self.user_statuses.clear()
            self.certificate_states.clear()
            self.connector_details.clear()
            self.ndes_connectors.clear()
            self.scope_tags = dict(BUILT_IN_TAGS)
            self.writes.clear()
            self.read_times.clear()
            self.stats = Stats()


def seed_from_demo(state: State, now: dt.datetime | None = None) -> None:
    """Fill the directory with the demo tenant (devtools/tenant.py), as Entra and Intune would list it."""
    from django.utils import timezone

    from devtools.tenant import build_tenant

    tenant = build_tenant(now or timezone.now())
    users = [u for u in tenant.users if u.removed_at is None]
    live_ids = {u.object_id for u in users}
    state.users = {
        str(u.object_id): {
            "id": str(u.object_id),
            "userPrincipalName": u.upn,
            "displayName": u.display_name,
            "givenName": u.given_name or None,
            "surname": u.surname or None,
            "mail": u.mail or None,
            "proxyAddresses": list(u.proxy_addresses),
            "department": u.department or None,
            "jobTitle": u.job_title or None,
            "accountEnabled": u.account_enabled,
        }
        for u in users
    }
    state.devices = {}
    entra_ids: dict[uuid.UUID, str] = {}
    for d in tenant.devices:
        if d.removed_at is not None:
            continue
        managed_id = str(uuid.uuid5(d.device_id, "managedDevice"))
        entra_ids[d.device_id] = str(uuid.uuid5(d.device_id, "entraDevice"))
        owner = d.primary_user if d.primary_user and d.primary_user.object_id in live_ids else None
        state.devices[managed_id] = {
            "id": managed_id,
            "azureADDeviceId": str(d.device_id),
            "deviceName": d.name,
            "operatingSystem": _os_name(d.platform),
            "deviceType": _DEVICE_TYPES.get(d.platform, "unknown"),
            "deviceEnrollmentType": _ENROLLMENT_TYPES.get(d.platform, "userEnrollment"),
            "osVersion": d.os_version,
            "manufacturer": d.manufacturer,
            "model": d.model,
            "serialNumber": d.serial_number,
            "managedDeviceOwnerType": d.ownership,
            "lastSyncDateTime": d.last_check_in.isoformat() if d.last_check_in else None,
            "userId": str(owner.object_id) if owner else None,
            "userPrincipalName": owner.upn if owner else None,
        }
    state.groups = {
        str(g.object_id): {
            "id": str(g.object_id),
            "displayName": g.display_name,
            "description": g.description,
            "groupTypes": [],
            "securityEnabled": True,
            "mailEnabled": False,
        }
        for g in tenant.groups
    }
    # Microsoft's connectors as a tenant lists them: one current, one legacy NDES connector gone quiet.
    stamp = (now or timezone.now()).astimezone(dt.UTC)
    state.connector_details = [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "pki-conn-01.contoso.local")),
            "connectorName": "PKI-CONN-01",
            "machineName": "pki-conn-01.contoso.local",
            "connectorVersion": "6.2405.1.0",
            "enrollmentDateTime": (stamp - dt.timedelta(days=200)).isoformat().replace("+00:00", "Z"),
            "lastCheckinDateTime": (stamp - dt.timedelta(minutes=12)).isoformat().replace("+00:00", "Z"),
        }
    ]
    state.ndes_connectors = [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "ndes01.contoso.local")),
            "displayName": "NDES01",
            "machineName": "ndes01.contoso.local",
            "connectorVersion": "6.1806.0.0",
            "enrolledDateTime": (stamp - dt.timedelta(days=900)).isoformat().replace("+00:00", "Z"),
            "lastConnectionDateTime": (stamp - dt.timedelta(days=3)).isoformat().replace("+00:00", "Z"),
            "state": "inactive",
            "roleScopeTagIds": ["0"],
        }
    ]
    state.members = {gid: [] for gid in state.groups}
    for group_id, user_id in tenant.user_members:
        user = state.users.get(str(user_id))
        if user:
            state.members[str(group_id)].append(
                {"@odata.type": "#microsoft.graph.user", **{k: user[k] for k in ("id", "userPrincipalName")}}
            )
    for group_id, device_id in tenant.device_members:
        if device_id in entra_ids:
            state.members[str(group_id)].append(
                {
                    "@odata.type": "#microsoft.graph.device",
                    "id": entra_ids[device_id],
                    "deviceId": str(device_id),
                }
            )


# Graph beta's deviceType and deviceEnrollmentType for each of the portal's platforms.
_DEVICE_TYPES = {
    "windows10": "desktop",
    "iOS": "iPhone",
    "macOS": "macMDM",
    "androidDeviceAdministrator": "android",
    "androidEnterpriseFullyManaged": "androidEnterprise",
    "androidEnterpriseWorkProfile": "androidForWork",
}
_ENROLLMENT_TYPES = {
    "windows10": "windowsAzureADJoin",
    "iOS": "appleBulkWithUser",
    "macOS": "appleBulkWithUser",
    "androidEnterpriseFullyManaged": "androidEnterpriseFullyManaged",
}


def _os_name(platform: str) -> str:
    if platform == "windows10":
        return "Windows"
    if platform == "iOS":
        return "iOS"
    if platform == "macOS":
        return "macOS"
    return "Android"

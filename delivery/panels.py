"""The delivery sections of the directory pages and of Home (registered in ``DeliveryConfig.ready()``)."""

from __future__ import annotations

from typing import Any

from delivery import reports
from directory.models import Device, DirectoryUser
from portal import access
from portal.http import AuthenticatedHttpRequest


def _readable(request: AuthenticatedHttpRequest) -> bool:
    return access.has_perm(request.user, "profiles.read") and access.has_perm(request.user, "directory.read")


def user_panel(request: AuthenticatedHttpRequest, user: DirectoryUser) -> dict[str, Any] | None:
    """Every certificate x device of the user, in one query, with a resend per device."""
    if not _readable(request):
        return None
    rows = list(reports.for_user(request.user, user))
    devices: dict[int, dict[str, Any]] = {}
    for row in rows:
        devices.setdefault(row.device_id, {"device": row.device, "rows": []})["rows"].append(row)
    return {
        "devices": list(devices.values()),
        "count": len(rows),
        "can_resend": access.has_perm(request.user, "profiles.resend"),
    }


def device_panel(request: AuthenticatedHttpRequest, device: Device) -> dict[str, Any] | None:
    """The certificates on one device: every state, however old."""
    if not _readable(request):
        return None
    return {
        "rows": list(reports.for_device(request.user, device)),
        "can_resend": access.has_perm(request.user, "profiles.resend"),
    }


def home_section(request: AuthenticatedHttpRequest) -> dict[str, Any] | None:
    """Home: devices failing, by error code."""
    if not _readable(request):
        return None
    return {
        "failing_devices": reports.failing_devices(request.user),
        "failing_codes": reports.failing_by_code(request.user),
    }

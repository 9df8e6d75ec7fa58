"""The delivery sections of the directory pages and of Home (registered in ``DeliveryConfig.ready()``)."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.utils import timezone

from delivery import reports
from delivery.models import DeliveryState, DeviceCredential, Source
from directory.models import Device, DirectoryUser
from portal import access, summaries
from portal.http import AuthenticatedHttpRequest
from profiles import states


def _readable(request: AuthenticatedHttpRequest) -> bool:
    return access.has_perm(request.user, "profiles.read") and access.has_perm(request.user, "directory.read")


def user_panel(request: AuthenticatedHttpRequest, user: DirectoryUser) -> dict[str, Any] | None:
    """Every certificate x device of the user, in one query, with a resend per device."""
    if not _readable(request):
        return None
    rows = reports.for_user(request.user, user)
    devices: dict[Any, dict[str, Any]] = {}
    for row in rows:
        devices.setdefault(row.device_id, {"device": row, "rows": []})["rows"].append(row)
    return {
        "devices": list(devices.values()),
        "count": len(rows),
        "can_resend": access.has_perm(request.user, "profiles.resend"),
        "intune_last_sync": states.intune_last_sync(),
        "next": request.path,
    }


def user_clock(user_id: str) -> list[str]:
    """Moves with every delivery row of the user written, added or deleted (see
    ``directory.panels.register_user_clock``).

    Device reports write these rows without an audit event, so the user page's kept sections key
    on this too. Every writer stamps ``updated_at`` (by hand where ``update()``/``bulk_update()``
    would not); the count and newest id catch rows deleted or added with an older stamp.
    """
    q = connection.ops.quote_name
    table = q(DeliveryState._meta.db_table)
    rows = f"FROM {table} WHERE {table}.{q('user_id')} = {user_id}"
    return [
        f"(SELECT COUNT(*) {rows})",
        f"(SELECT MAX({q('id')}) {rows})",
        f"(SELECT MAX({q('updated_at')}) {rows})",
    ]


def device_panel(request: AuthenticatedHttpRequest, device: Device) -> dict[str, Any] | None:
    """The certificates on one device: every state, however old."""
    if not _readable(request):
        return None
    return {
        "rows": list(reports.for_device(request.user, device)),
        "can_resend": access.has_perm(request.user, "profiles.resend"),
        "intune_last_sync": states.intune_last_sync(),
    }


def enrolment_panel(request: AuthenticatedHttpRequest, device: Device) -> dict[str, Any] | None:
    """The device's credential (enrolled, revoked, or none) and its unused enrolment tokens."""
    if not access.has_perm(request.user, "directory.read"):
        return None
    # Enrolling again revokes the earlier credential, so the newest is the live one if any is.
    credential = (
        access.scoped(DeviceCredential.objects.filter(device=device), request.user)
        .order_by("-enrolled_at", "-id")
        .first()
    )
    tokens = device.enrollment_tokens.filter(used_at=None, expires_at__gt=timezone.now())
    return {
        "credential": credential,
        "tokens": list(tokens),
        "can_change": access.has_perm(request.user, "directory.update") and device.removed_at is None,
        "next": request.path,
    }


def home_section(request: AuthenticatedHttpRequest) -> dict[str, Any] | None:
    """Home: devices failing, by error code.

    Counted over the whole status table, so kept between views like Home's other counts
    (``portal.summaries``): device reports write no audit event, so a new failure shows within
    ``PORTAL_SUMMARY_MAX_AGE`` seconds.
    """
    if not _readable(request):
        return None
    user = request.user

    def counts() -> dict[str, Any]:
        return {
            "failing_devices": reports.failing_devices(user),
            "failing_codes": reports.failing_by_code(user),
            "failing_intune": reports.failing_devices(user, source=Source.INTUNE),
        }

    key = f"home:delivery:{reports.profile_scope(user)}"
    kept: dict[str, Any] = summaries.kept(key, summaries.request_clock(request), counts)
    return {**kept, "intune_last_sync": states.intune_last_sync()}

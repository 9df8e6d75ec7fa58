"""What a device reports after a check-in: installed, failed (with a stable code) or removed.

A report carries a sequence number greater than the device's last accepted one; a replayed or
reordered report is refused whole and changes nothing. Each result names a certificate by
thumbprint and counts only for what the device was actually sent (an install) or asked to
remove; anything else is refused with a code, logged in the audit log, and changes nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from delivery.credentials import CATEGORY, device_actor
from delivery.models import DeliveryState, DeviceCredential, Source
from delivery.writes import rows_update
from directory.models import Device
from portal import audit
from portal.lib import lean
from portal.lib.refusal import Refused
from portal.models import AuditEvent
from profiles.models import DeliveryStatus

log = logging.getLogger(__name__)

INSTALLED, FAILED, REMOVED = "installed", "failed", "removed"
RESULTS = (INSTALLED, FAILED, REMOVED)
_CODE = re.compile(r"[a-z][a-z0-9_]{0,59}")
# A device's failure with a code outside this shape is recorded under this one.
DEVICE_FAILURE = "install_failed"
# What an install report may change: the device was sent the certificate and has not been told to
# remove it since.
_INSTALLABLE = (DeliveryStatus.PENDING, DeliveryStatus.ERROR, DeliveryStatus.SUCCEEDED)


# A report usually names one certificate: its rows by a statement compiled once.
_ROWS_OF_ONE = lean.Query(
    lambda device_id, thumbprint: DeliveryState.objects.select_for_update().filter(
        device_id=device_id, source=Source.PORTAL, certificate_thumbprint=thumbprint
    ),
    int,
    str,
)


@dataclass(frozen=True)
class Result:
    thumbprint: str
    result: str
    code: str = ""
    message: str = ""


def _resource(device: Device) -> dict[str, object]:
    return audit.resource(type="Device", id=str(device.device_id), name=device.name, scope=Device)


def log_refusal(credential: DeviceCredential, refused: Refused, ip: str | None) -> None:
    """Write a refusal of a known device's request to the audit log (its own transaction: the
    request changed nothing)."""
    with transaction.atomic():
        audit.record(
            device_actor(credential.device, ip),
            activity=f"Device request refused ({refused.code})",
            category=CATEGORY,
            operation="action",
            result=AuditEvent.Result.FAILURE,
            resources=[_resource(credential.device)],
        )


def report(
    credential: DeviceCredential, *, sequence: int, results: list[Result], ip: str | None = None
) -> dict[str, str]:
    try:
        return _report(credential, sequence=sequence, results=results, ip=ip)
    except Refused as refused:
        log_refusal(credential, refused, ip)
        raise


@transaction.atomic
def _report(
    credential: DeviceCredential, *, sequence: int, results: list[Result], ip: str | None
) -> dict[str, str]:
    # Conditional update: of a report and its replay (or two reports sent out of order), the one
    # with the lower sequence finds the bar already raised.
    if not lean.update(
        DeviceCredential, credential.pk, {"last_sequence": sequence}, below=("last_sequence", sequence)
    ):
        raise Refused(
            "replayed_report",
            "This report's sequence is not above the last one accepted: replayed or out of order.",
            status=409,
        )
    now = timezone.now()
    device = credential.device
    rows: dict[str, list[DeliveryState]] = {}
    thumbprints = [r.thumbprint for r in results if r.thumbprint]
    if len(set(thumbprints)) == 1:
        found = _ROWS_OF_ONE.rows(device.pk, thumbprints[0])
    else:
        found = list(
            DeliveryState.objects.select_for_update().filter(
                device=device, source=Source.PORTAL, certificate_thumbprint__in=thumbprints
            )
        )
    for row in found:
        rows.setdefault(row.certificate_thumbprint, []).append(row)
    outcome: dict[str, str] = {}
    changed: list[DeliveryState] = []
    refused: list[dict[str, object]] = []
    for item in results:
        answer = _apply(item, rows.get(item.thumbprint, []), now, changed)
        outcome[item.thumbprint] = answer
        if answer not in ("accepted", "unchanged"):
            refused.append(
                audit.resource(
                    type="Certificate", id=item.thumbprint, name=f"{item.thumbprint[:12]}: {answer}"
                )
            )
    if changed:
        rows_update(
            changed,
            ["status", "error_code", "error_message", "changed_at", "reported_at", "source", "updated_at"],
        )
        audit.record(
            device_actor(device, ip),
            activity="Device reported certificates",
            category=CATEGORY,
            operation="update",
            resources=[
                _resource(device),
                *(
                    audit.resource(
                        type="Certificate",
                        id=r.certificate_thumbprint,
                        name=f"{r.certificate_thumbprint[:12]}",
                        changes=[{"field": "status", "old": None, "new": r.status}],
                    )
                    for r in changed
                ),
            ],
        )
    if refused:
        log.warning("device %s: refused report results %s", device.pk, [r["name"] for r in refused])
        audit.record(
            device_actor(device, ip),
            activity="Device report results refused",
            category=CATEGORY,
            operation="action",
            result=AuditEvent.Result.FAILURE,
            resources=[_resource(device), *refused],
        )
    return outcome


def _apply(item: Result, rows: list[DeliveryState], now: datetime, changed: list[DeliveryState]) -> str:
    if item.result not in RESULTS:
        return "unknown_result"
    if item.result == REMOVED:
        targets = [r for r in rows if r.status == DeliveryStatus.REMOVAL_PENDING]
        if not targets:
            return "not_asked_to_remove"
        for row in targets:
            _change(row, DeliveryStatus.REMOVED, now, "", "")
            changed.append(row)
        return "accepted"
    targets = [r for r in rows if r.sent_at is not None and r.status in _INSTALLABLE]
    if not targets:
        return "not_sent"
    for row in targets:
        if item.result == INSTALLED:
            _change(row, DeliveryStatus.SUCCEEDED, now, "", "")
        else:
            code = item.code if _CODE.fullmatch(item.code or "") else DEVICE_FAILURE
            message = item.message or "The device could not install the certificate."
            _change(row, DeliveryStatus.ERROR, now, code, message)
        changed.append(row)
    return "accepted"


def _change(row: DeliveryState, status: str, now: datetime, code: str, message: str) -> None:
    if row.status != status:
        row.changed_at = now
    row.status, row.error_code, row.error_message = status, code, message[:1000]
    # updated_at by hand (bulk_update does not stamp it): the user page's pieces key on it.
    row.reported_at, row.source, row.updated_at = now, Source.PORTAL, now

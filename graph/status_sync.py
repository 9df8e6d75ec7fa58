"""Intune status sync: what Intune reports about each of the portal's profiles in Intune (its
``deviceStatuses``, ``userStatuses``, ``deviceStatusOverview`` and the per-device
``managedDeviceCertificateStates``), read page by page and written into the delivery status model as
rows with ``source=intune``, beside the portal's own check-ins.

Devices are matched by Intune's managed device id or Entra's device id (a status id is Intune's
ids joined by ``_``; each part is tried), certificates by thumbprint. What matches nothing is
counted on the profile and the run, never invented. Each profile is read fully, then written in one
transaction (bulk creates, updates and deletes of its Intune rows only), so a run that dies part way
leaves every profile either as the previous run left it or as this one did; running again changes
nothing Intune has not changed. Reads are paced under Intune's documented limit
(``GRAPH_STATUS_READ_LIMIT`` per ``GRAPH_STATUS_READ_WINDOW_SECONDS``); a 429 is retried by the
client after ``Retry-After``. One run at a time (``portal.lib.runs``); a run whose worker died is
closed as failed once it is older than ``GRAPH_STATUS_SYNC_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection as db
from django.db import transaction
from django.utils import timezone

from certs.models import Certificate
from delivery.models import DeliveryState, Source
from directory.models import Device
from graph import connection
from graph import endpoints as ep
from graph.client import GraphClient, GraphError
from graph.models import IntuneProfileStatus, ProfileRecord, StatusSyncRun
from portal import audit
from portal.lib import lean, runs
from portal.lib.refusal import Refused
from portal.models import AuditEvent
from profiles.models import DeliveryStatus

RUNS = runs.RunKind(
    model=StatusSyncRun,
    noun="Intune status sync",
    category="Device configuration",
    start_activity="Start Intune status sync",
    finish_activity="Read device status from Intune",
    finish_operation=AuditEvent.Operation.UPDATE,
    worker="Intune status sync",
)

# complianceStatus (Intune's per-device state of a profile) to the portal's states. notAssigned
# means the profile no longer reaches the device: no row.
DEVICE_STATES = {
    "compliant": DeliveryStatus.SUCCEEDED,
    "remediated": DeliveryStatus.SUCCEEDED,
    "error": DeliveryStatus.ERROR,
    "nonCompliant": DeliveryStatus.ERROR,
    "conflict": DeliveryStatus.CONFLICT,
    "notApplicable": DeliveryStatus.NOT_APPLICABLE,
    "unknown": DeliveryStatus.PENDING,
}
# certificateIssuanceStates to the portal's states; anything else (requested, pending, unknown...) is Pending.
CERTIFICATE_STATES = {
    "installed": DeliveryStatus.SUCCEEDED,
    "issued": DeliveryStatus.SUCCEEDED,
    "enrollmentSucceeded": DeliveryStatus.SUCCEEDED,
    "renewVerified": DeliveryStatus.SUCCEEDED,
    "deleted": DeliveryStatus.REMOVED,
    "removedFromCollection": DeliveryStatus.REMOVED,
    "revoked": DeliveryStatus.REMOVED,
}
_COMPARED = (
    "status",
    "error_code",
    "error_message",
    "source_detail",
    "reported_at",
    "user_id",
    "certificate_id",
)
_FIELDS = [*_COMPARED, "changed_at", "updated_at"]


def start(actor: audit.Actor) -> tuple[StatusSyncRun, bool]:
    """An on-demand sync: recorded now, carried out by a worker. While one runs, that one (and False)."""
    from graph import tasks

    close_stalled()
    return RUNS.start(actor, tasks.sync_intune_status.delay)


# Read on every view of a user page (its kept copy is keyed on it): compiled once.
_LAST_SYNC = lean.Fixed(
    lambda: (
        StatusSyncRun.objects.filter(state=StatusSyncRun.State.DONE)
        .order_by("-finished_at")
        .values_list("finished_at")[:1]
    )
)


def last_sync() -> dt.datetime | None:
    rows = _LAST_SYNC.rows()
    return rows[0][0] if rows else None


def user_clock(user_id: str) -> list[str]:
    """Moves with each finished status sync: the user page shows when Intune was last read (see
    ``directory.panels.register_user_clock``). The same for every user."""
    q = db.ops.quote_name
    done = str(StatusSyncRun.State.DONE)  # a constant of letters: written into the SQL as it is
    runs = q(StatusSyncRun._meta.db_table)
    return [f"(SELECT MAX({runs}.{q('finished_at')}) FROM {runs} WHERE {runs}.{q('state')} = '{done}')"]


def profile_summary(profile_id: int) -> dict[str, Any] | None:
    row = IntuneProfileStatus.objects.filter(profile_id=profile_id).first()
    if row is None:
        return None
    return {
        "overview": row.overview,
        "users": row.users,
        "devices_reported": row.devices_reported,
        "certificates_reported": row.certificates_reported,
        "unknown_devices": row.unknown_devices,
        "unknown_certificates": row.unknown_certificates,
        "synced_at": row.synced_at,
    }


def close_stalled(now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    limit = dt.timedelta(seconds=settings.GRAPH_STATUS_SYNC_TIMEOUT_SECONDS)
    return runs.fail_stalled(StatusSyncRun, started_before=now - limit, now=now)


class Pacer:
    """At most ``limit`` requests in any ``window`` seconds (a sliding window: one run reads at a time)."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit, self.window, self.clock, self.sleep = limit, window, clock, sleep
        self.sent: deque[float] = deque()
        self.total = 0

    def wait(self) -> None:
        now = self.clock()
        while self.sent and self.sent[0] <= now - self.window:
            self.sent.popleft()
        if len(self.sent) >= self.limit:
            self.sleep(self.sent[0] + self.window - now)
            now = self.clock()
            self.sent.popleft()
        self.sent.append(now)
        self.total += 1


def _after_previous(pacer: Pacer, sync_run: StatusSyncRun) -> None:
    """Wait out the window of the run before: its requests still count in Intune's window, and this
    run's pacer (new, perhaps in another process) does not know them."""
    previous = (
        StatusSyncRun.objects.exclude(pk=sync_run.pk)
        .filter(finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    if previous is not None:
        gap = (timezone.now() - previous).total_seconds()
        if 0 <= gap < pacer.window:
            pacer.sleep(pacer.window - gap)


@dataclass
class Reader:
    client: GraphClient
    pacer: Pacer

    def pages(self, path: str) -> Iterator[list[dict[str, Any]]]:
        """Every page, following ``@odata.nextLink`` to the end, each request paced."""
        next_url: str | None = path
        while next_url:
            self.pacer.wait()
            data = self.client.get_json(next_url)
            yield [item for item in data.get("value", []) if isinstance(item, dict)]
            next_url = data.get("@odata.nextLink")

    def all(self, path: str) -> list[dict[str, Any]]:
        return [item for page in self.pages(path) for item in page]


@dataclass
class Devices:
    """The directory's devices by every id Intune may name them with."""

    by_id: dict[str, tuple[int, int | None]]  # lower-case id -> (device pk, primary user pk)

    @classmethod
    def load(cls, reader: Reader) -> Devices:
        entra: dict[str, tuple[int, int | None]] = {
            str(device_id).lower(): (pk, user_id)
            for device_id, pk, user_id in Device.objects.values_list("device_id", "pk", "primary_user_id")
        }
        by_id = dict(entra)
        for item in reader.pages(
            f"/v1.0/deviceManagement/managedDevices?$select={ep.DEVICE_ID_FIELDS}&$top=999"
        ):
            for device in item:
                found = entra.get(str(device.get("azureADDeviceId") or "").lower())
                if found is not None and device.get("id"):
                    by_id[str(device["id"]).lower()] = found
        return cls(by_id)

    def match(self, item_id: str, config_id: str) -> tuple[int, int | None] | None:
        for part in str(item_id).lower().split("_"):
            if part and part != config_id.lower() and (found := self.by_id.get(part)) is not None:
                return found
        return None


@dataclass
class Wanted:
    status: str
    error_code: str = ""
    error_message: str = ""
    source_detail: str = ""
    reported_at: dt.datetime | None = None
    user_id: int | None = None
    certificate_id: int | None = None


@dataclass
class ProfileRead:
    rows: dict[tuple[int, str], Wanted] = field(default_factory=dict)
    overview: dict[str, Any] = field(default_factory=dict)
    users: Counter[str] = field(default_factory=Counter)
    devices: int = 0
    certificates: int = 0
    unknown_devices: int = 0
    unknown_certificates: int = 0


def run(
    run_id: int | None = None, *, client: GraphClient | None = None, pacer: Pacer | None = None
) -> StatusSyncRun:
    close_stalled()
    sync_run, go = RUNS.begin(run_id)
    if not go:
        return sync_run
    totals: Counter[str] = Counter()
    try:
        reader = Reader(
            client or connection.connected_client(),
            pacer or Pacer(settings.GRAPH_STATUS_READ_LIMIT, settings.GRAPH_STATUS_READ_WINDOW_SECONDS),
        )
        _after_previous(reader.pacer, sync_run)
        devices = Devices.load(reader)
        records = ProfileRecord.objects.filter(profile__isnull=False).exclude(graph_id="").order_by("pk")
        for record in records:
            assert record.profile_id is not None
            try:
                read = read_profile(reader, record, devices)
            except GraphError as exc:
                if exc.status != 404:
                    raise
                # Deleted in Intune behind the portal's back: reconcile reports it; its rows stay as last read.
                totals["profiles missing in Intune"] += 1
                continue
            totals.update(apply(record.profile_id, read, timezone.now()))
            totals["profiles"] += 1
        totals["requests"] = reader.pacer.total
    except (GraphError, Refused) as exc:
        return RUNS.fail(sync_run, connection.failure(exc))
    return RUNS.finish(sync_run, dict(totals))


def read_profile(reader: Reader, record: ProfileRecord, devices: Devices) -> ProfileRead:
    base = f"{ep.CONFIGURATIONS}/{quote(record.graph_id, safe='')}"
    read = ProfileRead()
    reported: dict[int, dt.datetime | None] = {}
    for page in reader.pages(f"{base}/deviceStatuses?$select={ep.DEVICE_STATUS_FIELDS}"):
        for item in page:
            read.devices += 1
            found = devices.match(str(item.get("id") or ""), record.graph_id)
            state = DEVICE_STATES.get(str(item.get("status")))
            if found is None:
                read.unknown_devices += 1
                continue
            if state is None:
                continue
            when = _time(item.get("lastReportedDateTime"))
            reported[found[0]] = when
            error = state == DeliveryStatus.ERROR
            read.rows[(found[0], "")] = Wanted(
                status=state,
                error_code=f"intune_{item.get('status')}" if error else "",
                error_message="Intune reports this profile failed on the device." if error else "",
                source_detail=f"Intune: {item.get('status')}",
                reported_at=when,
                user_id=found[1],
            )
    for page in reader.pages(f"{base}/userStatuses?$select={ep.USER_STATUS_FIELDS}"):
        read.users.update(str(item.get("status") or "unknown") for item in page)
    reader.pacer.wait()
    read.overview = {
        k: v
        for k, v in reader.client.get_json(
            f"{base}/deviceStatusOverview?$select={ep.OVERVIEW_FIELDS}"
        ).items()
        if not k.startswith("@")
    }
    states = [
        item
        for page in reader.pages(
            f"{base}/microsoft.graph.{record.graph_type}/managedDeviceCertificateStates"
            f"?$select={ep.CERTIFICATE_STATE_FIELDS}"
        )
        for item in page
    ]
    thumbprints = {str(s.get("certificateThumbprint") or "").lower() for s in states} - {""}
    known = _certificates(thumbprints)
    for item in states:
        read.certificates += 1
        thumbprint = str(item.get("certificateThumbprint") or "").lower()
        found = devices.match(str(item.get("id") or ""), record.graph_id)
        if found is None:
            read.unknown_devices += 1
            continue
        if thumbprint not in known:
            read.unknown_certificates += 1
            continue
        read.rows[(found[0], thumbprint)] = _certificate_row(item, found, known[thumbprint], reported)
    return read


def _certificate_row(
    item: dict[str, Any], found: tuple[int, int | None], certificate_id: int, reported: dict[int, Any]
) -> Wanted:
    issuance = str(item.get("certificateIssuanceState") or "unknown")
    revoke = str(item.get("certificateRevokeStatus") or "none")
    failed = issuance.endswith("Failed")
    state = DeliveryStatus.ERROR if failed else CERTIFICATE_STATES.get(issuance, DeliveryStatus.PENDING)
    expiry = _time(item.get("certificateExpirationDateTime"))
    detail = (
        f"Intune: {issuance}, revoke {revoke}; serial {item.get('certificateSerialNumber') or '?'}; "
        f"issuer {item.get('certificateIssuer') or '?'}; expires {expiry:%Y-%m-%d}"
        if expiry
        else f"Intune: {issuance}, revoke {revoke}; serial {item.get('certificateSerialNumber') or '?'}"
    )
    code = item.get("certificateErrorCode") or 0
    return Wanted(
        status=state,
        error_code=f"intune_{issuance}" if failed else "",
        error_message=f"Intune reports {issuance} (error code {code})." if failed else "",
        source_detail=detail[:300],
        reported_at=reported.get(found[0]),
        user_id=found[1],
        certificate_id=certificate_id,
    )


def _certificates(thumbprints: set[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    chunk = sorted(thumbprints)
    for n in range(0, len(chunk), 2000):
        out.update(
            Certificate.objects.filter(thumbprint__in=chunk[n : n + 2000]).values_list("thumbprint", "pk")
        )
    return {k.lower(): v for k, v in out.items()}


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def apply(profile_id: int, read: ProfileRead, now: dt.datetime) -> Counter[str]:
    """Make the profile's Intune rows what Intune reported: create, update what changed, delete the gone."""
    counts: Counter[str] = Counter(
        {
            "devices reported": read.devices,
            "certificates reported": read.certificates,
            "unknown devices": read.unknown_devices,
            "unknown certificates": read.unknown_certificates,
        }
    )
    with transaction.atomic():
        existing = {
            (row.device_id, row.certificate_thumbprint): row
            for row in DeliveryState.objects.filter(profile_id=profile_id, source=Source.INTUNE).only(
                "pk", "device_id", "certificate_thumbprint", "changed_at", *_COMPARED
            )
        }
        created: list[DeliveryState] = []
        changed: list[DeliveryState] = []
        for (device_id, thumbprint), want in read.rows.items():
            row = existing.pop((device_id, thumbprint), None)
            if row is None:
                created.append(
                    DeliveryState(
                        profile_id=profile_id,
                        device_id=device_id,
                        certificate_thumbprint=thumbprint,
                        source=Source.INTUNE,
                        changed_at=now,
                        **_values(want),
                    )
                )
            elif _differs(row, want):
                if row.status != want.status:
                    row.changed_at = now
                row.updated_at = now  # bulk_update does not stamp auto_now fields
                for name, value in _values(want).items():
                    setattr(row, name, value)
                changed.append(row)
        DeliveryState.objects.bulk_create(created, batch_size=2000, ignore_conflicts=True)
        DeliveryState.objects.bulk_update(changed, _FIELDS, batch_size=1000)
        gone = [row.pk for row in existing.values()]
        for n in range(0, len(gone), 5000):
            DeliveryState.objects.filter(pk__in=gone[n : n + 5000]).delete()
        IntuneProfileStatus.objects.update_or_create(
            profile_id=profile_id,
            defaults={
                "overview": read.overview,
                "users": dict(read.users),
                "devices_reported": read.devices,
                "certificates_reported": read.certificates,
                "unknown_devices": read.unknown_devices,
                "unknown_certificates": read.unknown_certificates,
                "synced_at": now,
            },
        )
    counts.update({"rows created": len(created), "rows updated": len(changed), "rows removed": len(gone)})
    return counts


def _values(want: Wanted) -> dict[str, Any]:
    return {name: getattr(want, name) for name in _COMPARED}


def _differs(row: DeliveryState, want: Wanted) -> bool:
    return any(getattr(row, name) != value for name, value in _values(want).items())

"""Check-in: what a device must install and remove, decided from the profiles that reach it.

For every profile the evaluation says applies to the device (``profiles.targeting``, the same
flags and reasons as the profile's reports), the primary user's certificates of the profile's
intended purpose are wanted:

* S/MIME encryption: every stored one, valid or past, so old mail stays readable;
* S/MIME signing (and unassigned): the newest valid one. A superseded one already on the
  device stays wanted until its successor is Succeeded there: the new one is installed first.

Each wanted certificate gets a Pending row and a re-encryption job to the device's key (one per
certificate x key, shared by check-ins and profiles). A row whose job is done goes out with the
PFX and the ciphertext; a row no longer wanted that was sent goes out as a removal. Profiles in
Conflict deliver nothing and take nothing away (an admin's mistake should not strip mail keys).
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from certs.models import Certificate
from connectors.models import ConnectorJob
from delivery import protocol, quiet, reads
from delivery.credentials import CATEGORY, device_actor
from delivery.models import DeliveryState, DeviceCredential, Source
from delivery.writes import rows_update
from directory.models import Device
from portal import audit
from portal.audit import Actor
from portal.lib import lean
from portal.models import AuditEvent
from profiles.models import DeliveryStatus, IntendedPurpose
from profiles.specs import ProfileSpecs, TargetSpec, tenant_specs
from profiles.targeting import UserFacts, flags_of, outcome

APPLIES = frozenset({DeliveryStatus.SUCCEEDED, DeliveryStatus.ERROR, DeliveryStatus.PENDING})
NO_PROFILE = "no_profile_targets_platform"
NO_USER = "no_primary_user"
NO_CERTIFICATE = "no_certificate"
# A device's last check-in time is written at most this often: a check-in that changes nothing
# writes nothing.
SEEN_EVERY = timedelta(seconds=60)


@dataclass
class Policy:
    install: list[dict[str, Any]] = field(default_factory=list)
    remove: list[dict[str, Any]] = field(default_factory=list)
    waiting: int = 0  # wanted certificates still being re-encrypted
    reason: str = ""  # why nothing is delivered at all, when that is so

    def as_json(self) -> dict[str, Any]:
        return {
            "install": self.install,
            "remove": self.remove,
            "waiting": self.waiting,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Reach:
    applying: list[TargetSpec]
    conflicting: set[int]  # profile ids in Conflict on the device


def reaching_profiles(
    device: Device, specs: ProfileSpecs, reported: Mapping[tuple[int, int], frozenset[str]]
) -> Reach:
    """The profiles that apply to ``device`` and those in Conflict there, by the evaluation's rules.

    ``reported``: the device's states by (profile id, device id), as :class:`UserFacts` holds them.
    Only this device's facts are read (two queries): the flags of a device depend on no other.
    """
    candidates = [s for s in specs.specs.values() if s.platform == device.platform and s.is_assigned]
    user = device.primary_user
    if not candidates or user is None or user.removed_at is not None:
        return Reach([], set())
    groups: dict[bool, set[int]] = {True: set(), False: set()}
    for is_user, group_id in reads.GROUPS.rows(user.pk, device.pk):
        groups[bool(is_user)].add(group_id)
    facts = UserFacts(
        user=user,
        devices=(device,),
        user_groups=frozenset(groups[True]),
        device_groups={device.pk: frozenset(groups[False])},
        reported=reported,
    )
    applying: list[TargetSpec] = []
    conflicting: set[int] = set()
    for spec in candidates:
        state = outcome(flags_of(spec, specs.rivals(spec), device, facts)).state
        if state in APPLIES:
            applying.append(spec)
        elif state == DeliveryStatus.CONFLICT and spec.profile_id is not None:
            conflicting.add(spec.profile_id)
    return Reach(applying, conflicting)


def _newest(certificates: list[Certificate]) -> Certificate | None:
    return max(certificates, key=lambda c: (c.not_before, c.not_after, c.pk), default=None)


def wanted_certificates(
    spec: TargetSpec, certificates: list[Certificate], succeeded: set[str], now: datetime
) -> list[Certificate]:
    """The certificates of ``spec``'s purpose the device must hold; ``succeeded``: thumbprints installed."""
    own = [c for c in certificates if c.purpose == spec.intended_purpose]
    if spec.intended_purpose == IntendedPurpose.SMIME_ENCRYPTION:
        return own
    valid = [c for c in own if c.not_before <= now < c.not_after]
    newest = _newest(valid)
    if newest is None:
        return []
    if newest.thumbprint in succeeded:
        return [newest]
    # Rollover: keep what is installed until the newest one is.
    return [newest, *(c for c in valid if c.thumbprint in succeeded and c.pk != newest.pk)]


def _existing_jobs(credential: DeviceCredential, certificates: list[Certificate]) -> dict[int, ConnectorJob]:
    """This device key's re-encryption jobs for these certificates, by certificate id."""
    if not certificates:
        return {}
    ids = {c.pk for c in certificates}
    return {
        j.certificate_id: j for j in reads.JOBS.rows(credential.key_fingerprint) if j.certificate_id in ids
    }


def _create_jobs(credential: DeviceCredential, certificates: list[Certificate]) -> dict[int, ConnectorJob]:
    """One re-encryption job per certificate for this device key (a concurrent check-in's stand)."""
    lean.insert(
        [
            ConnectorJob(
                kind=ConnectorJob.Kind.DEVICE,
                certificate_id=c.pk,
                from_fingerprint=c.encryption_key.fingerprint,
                to_fingerprint=credential.key_fingerprint,
                device_public_key=credential.public_key_pem,
                device_credential_id=credential.pk,
            )
            for c in {c.pk: c for c in certificates}.values()
        ],
        ignore_conflicts=True,
    )
    return _existing_jobs(credential, certificates)


def _job_error(job: ConnectorJob) -> tuple[str, str]:
    code, _, message = job.error.partition(": ")
    if not message or " " in code:
        return "reencrypt_failed", job.error or "The connector could not re-encrypt the password."
    return code, message


def check_in(credential: DeviceCredential, *, ip: str | None = None) -> Policy:
    """The device's policy now; writes the rows and jobs it implies, in one transaction with their
    audit event, and nothing when nothing changed (the usual check-in). Two check-ins of one device
    at once find the same jobs and rows: both are unique."""
    now = timezone.now()
    if credential.last_check_in is None or now - credential.last_check_in > SEEN_EVERY:
        lean.update(DeviceCredential, credential.pk, {"last_check_in": now, "last_ip": ip})
    device = credential.device
    specs = tenant_specs(recheck_after=settings.DEVICE_POLICY_RECHECK_SECONDS)
    key = quiet.fingerprint(credential, specs)
    answer = quiet.kept(credential, key) if key is not None else None
    if answer is not None:
        return Policy(reason=answer[0], waiting=answer[1])
    rows = {(r.profile_id, r.certificate_thumbprint): r for r in reads.STATES.rows(device.pk)}
    reported: defaultdict[tuple[int, int], set[str]] = defaultdict(set)
    for state in rows.values():
        reported[(state.profile_id, device.pk)].add(state.status)
    reach = reaching_profiles(device, specs, {k: frozenset(v) for k, v in reported.items()})
    policy = Policy()
    if _decide(credential, rows, reach, policy, now, ip) and key is not None:
        # The fingerprint was read before the rows: a change committed in between shows as a new
        # fingerprint at the next check-in, so a kept answer is never older than its key.
        quiet.keep(credential, key, (policy.reason, policy.waiting))
    return policy


def _decide(
    credential: DeviceCredential,
    rows: dict[tuple[int, str], DeliveryState],
    reach: Reach,
    policy: Policy,
    now: datetime,
    ip: str | None,
) -> bool:
    """Fill in ``policy`` and write what it implies; True when the check-in changed nothing and
    gives the device nothing to install or remove (the answer may be kept, see ``quiet``)."""
    device = credential.device
    user = device.primary_user
    if not reach.applying and not rows:
        policy.reason = NO_USER if user is None else NO_PROFILE
        return True
    purposes = {s.intended_purpose for s in reach.applying}
    certificates = (
        [c for c in reads.CERTIFICATES.rows(user.pk) if c.purpose in purposes]
        if user is not None and purposes
        else []
    )
    succeeded = {t for (_p, t), r in rows.items() if r.status == DeliveryStatus.SUCCEEDED}
    wanted: dict[tuple[int, str], Certificate] = {}
    empty: set[int] = set()
    for spec in reach.applying:
        assert spec.profile_id is not None
        chosen = wanted_certificates(spec, certificates, succeeded, now)
        if not chosen:
            empty.add(spec.profile_id)
        for certificate in chosen:
            wanted[(spec.profile_id, certificate.thumbprint)] = certificate
    fingerprint = credential.key_fingerprint
    current = {
        key: row.job
        for key, row in rows.items()
        if key in wanted and row.job is not None and row.job.to_fingerprint == fingerprint
    }
    jobs = _existing_jobs(credential, [c for key, c in wanted.items() if key not in current])
    missing = [c for key, c in wanted.items() if key not in current and c.pk not in jobs]
    changed: list[DeliveryState] = []
    created: list[DeliveryState] = []
    install: dict[str, tuple[Certificate, ConnectorJob, list[DeliveryState]]] = {}
    for key, certificate in wanted.items():
        job = current.get(key) or jobs.get(certificate.pk)
        row = rows.get(key)
        if row is None:
            row = DeliveryState(
                profile_id=key[0],
                device=device,
                user=user,
                certificate=certificate,
                certificate_thumbprint=certificate.thumbprint,
                status=DeliveryStatus.PENDING,
                source=Source.PORTAL,
                job=job,
                changed_at=now,
            )
            created.append(row)
        elif row.status in (DeliveryStatus.REMOVAL_PENDING, DeliveryStatus.REMOVED) or (
            job is None or row.job_id != job.pk
        ):
            # Wanted again (reassigned), or the device enrolled a new key: deliver afresh.
            _set(row, DeliveryStatus.PENDING, now)
            row.job, row.sent_at, row.certificate, row.user = job, None, certificate, user
            changed.append(row)
        if row.status != DeliveryStatus.PENDING:
            continue
        if job is None:
            policy.waiting += 1  # its job is created below
        elif job.state == ConnectorJob.State.DONE:
            install.setdefault(certificate.thumbprint, (certificate, job, []))[2].append(row)
        elif job.state == ConnectorJob.State.FAILED:
            code, message = _job_error(job)
            _set(row, DeliveryStatus.ERROR, now, code, message)
            _mark(row, changed, created)
        else:
            policy.waiting += 1
    removals: list[DeliveryState] = []
    deleted: list[int] = []
    still_wanted = {thumbprint for _profile, thumbprint in wanted}
    removing: set[str] = set()
    for key, row in rows.items():
        if key in wanted or row.profile_id in reach.conflicting:
            continue
        if not row.certificate_thumbprint:
            if row.profile_id not in empty:
                deleted.append(row.pk)
            continue
        if row.status == DeliveryStatus.REMOVED:
            continue
        if (row.sent_at is None and row.status != DeliveryStatus.SUCCEEDED) or (
            row.certificate_thumbprint in still_wanted
        ):
            # Never reached the device, or another profile keeps it there.
            _set(row, DeliveryStatus.REMOVED, now)
            changed.append(row)
            continue
        if row.status != DeliveryStatus.REMOVAL_PENDING:
            _set(row, DeliveryStatus.REMOVAL_PENDING, now)
            changed.append(row)
            removals.append(row)
        if row.certificate_thumbprint not in removing:
            removing.add(row.certificate_thumbprint)
            policy.remove.append({"thumbprint": row.certificate_thumbprint})
    for profile_id in empty:
        if (profile_id, "") not in rows:
            created.append(
                DeliveryState(
                    profile_id=profile_id,
                    device=device,
                    user=user,
                    status=DeliveryStatus.PENDING,
                    error_code=NO_CERTIFICATE,
                    source=Source.PORTAL,
                    changed_at=now,
                    error_message="The user has no certificate for this profile's intended purpose yet.",
                )
            )
    _deliver(install, policy, now, changed)
    if missing or created or changed or deleted:
        with transaction.atomic():
            if missing:
                made = _create_jobs(credential, missing)
                for row in [*created, *changed]:
                    if row.job_id is None and row.certificate_id in made:
                        row.job = made[row.certificate_id]
            if deleted:
                DeliveryState.objects.filter(pk__in=deleted).delete()
            # A check-in of the same device at the same moment may have created some: theirs stand.
            lean.insert(created, ignore_conflicts=True)
            _save(changed)
            _audit(device, ip, created, removals)
        return False
    return not (policy.install or policy.remove)


def _set(row: DeliveryState, status: str, now: datetime, code: str = "", message: str = "") -> None:
    if row.status != status:
        row.changed_at = now
    row.status, row.error_code, row.error_message = status, code, message[:1000]


def _mark(row: DeliveryState, changed: list[DeliveryState], created: list[DeliveryState]) -> None:
    if row._state.adding:
        if row not in created:
            created.append(row)
    elif row not in changed:
        changed.append(row)


def _deliver(
    install: dict[str, tuple[Certificate, ConnectorJob, list[DeliveryState]]],
    policy: Policy,
    now: datetime,
    changed: list[DeliveryState],
) -> None:
    if not install:
        return
    for thumbprint, (certificate, job, rows) in install.items():
        # One or two a check-in: each read by its compiled statement.
        blob, password = reads.PFX.rows(certificate.pk)[0], reads.PASSWORD.rows(job.pk)[0]
        policy.install.append(
            {
                "thumbprint": thumbprint,
                "purpose": certificate.purpose,
                "profiles": sorted(r.profile_id for r in rows),
                "pfx": base64.b64encode(bytes(blob)).decode("ascii"),
                "encrypted_password": base64.b64encode(bytes(password)).decode("ascii"),
                "padding": protocol.PADDING,
            }
        )
        for row in rows:
            row.sent_at = now
            if not row._state.adding and row not in changed:
                changed.append(row)


_FIELDS = [
    "status",
    "error_code",
    "error_message",
    "changed_at",
    "sent_at",
    "job",
    "certificate",
    "user",
    "updated_at",
]


def _save(changed: list[DeliveryState]) -> None:
    saved = [r for r in changed if not r._state.adding]
    # bulk_update does not stamp auto_now fields; the user page's pieces key on updated_at.
    now = timezone.now()
    for row in saved:
        row.updated_at = now
    if saved:
        rows_update(saved, _FIELDS)


def _audit(
    device: Device, ip: str | None, created: list[DeliveryState], removals: list[DeliveryState]
) -> None:
    """A check-in that starts a delivery or a removal is audited; one that changes nothing is not."""
    started = [r for r in created if r.certificate_thumbprint]
    if not started and not removals:
        return
    resources = [
        audit.resource(
            type="Certificate",
            id=r.certificate_thumbprint,
            name=f"{r.certificate_thumbprint[:12]} ({'remove' if r in removals else 'deliver'})",
            scope=Certificate,
        )
        for r in [*started, *removals]
    ]
    audit.record(
        device_actor(device, ip),
        activity="Device check-in",
        category=CATEGORY,
        operation="action",
        resources=[
            audit.resource(type="Device", id=str(device.device_id), name=device.name, scope=Device),
            *resources,
        ],
    )


@transaction.atomic
def rows_for_jobs_failed(job_ids: list[int]) -> int:
    """Pending rows waiting on these jobs turn Error with the job's code (connectors' signal), with
    one audit event naming the devices and certificates."""
    now = timezone.now()
    count = 0
    by_job: dict[int, list[DeliveryState]] = defaultdict(list)
    pending = DeliveryState.objects.filter(job_id__in=job_ids, status=DeliveryStatus.PENDING)
    for row in pending.select_related("job", "device"):
        by_job[row.job_id or 0].append(row)
    resources: list[dict[str, object]] = []
    for rows in by_job.values():
        job = rows[0].job
        assert job is not None
        code, message = _job_error(job)
        count += DeliveryState.objects.filter(
            pk__in=[r.pk for r in rows], status=DeliveryStatus.PENDING
        ).update(
            status=DeliveryStatus.ERROR,
            error_code=code,
            error_message=message[:1000],
            changed_at=now,
            updated_at=now,  # update() does not stamp it; the user page's pieces key on it
        )
        resources += [
            audit.resource(
                type="Device",
                id=str(r.device.device_id),
                name=f"{r.device.name}: {r.certificate_thumbprint[:12]} ({code})",
                scope=Device,
            )
            for r in rows
        ]
    if resources:
        audit.record(
            Actor.system(),
            activity="Delivery failed: the connector could not re-encrypt",
            category=CATEGORY,
            operation="update",
            result=AuditEvent.Result.FAILURE,
            resources=resources,
        )
    return count

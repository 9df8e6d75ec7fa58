"""What a worker does with an import's rows: claim a chunk, validate, encrypt, store, write the results.

A chunk's rows go from "queued" to their final state in one transaction. Rows are claimed with
a lease first, so a task run twice, or redelivered after its worker died, processes each row
once. The beat tasks that recover stalled rows and delete kept files are in ``certs.sweeps``.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from certs import sql, staging
from certs.keys import public_key
from certs.models import Certificate, GraphState, ImportBatch, ImportItem, ItemState
from certs.pfx import Inspection, Problem, ProblemError, encrypt_password, inspect_pfx
from certs.signals import certificates_stored
from directory.models import DirectoryUser
from portal import audit
from portal.audit import Actor
from portal.models import AuditEvent

logger = logging.getLogger(__name__)

CERTIFICATES = "Certificates"

# Items per worker task. Each task holds this many PFX files (a few KB each) in memory and
# writes their results in one transaction. 200 keeps a task under a second on typical RSA-2048
# files (about 2 ms each), with the per-task costs (claim, commit, broker round trip) a small
# share: 100 cost about 8% of end-to-end throughput. The worst file the limits let through
# (RSA-4096 key, 1,000,000 KDF iterations: ~0.7 s) makes a 140 s task, inside the 240 s soft limit.
CHUNK_SIZE = 200

# A row whose worker stops this many times is taken to be what stops it (a file that exhausts the
# worker's memory or time): it fails with worker_lost instead of going round for ever. From the
# second loss on, such rows are queued one per task, so one bad file cannot take its chunk with it.
MAX_LOST_CLAIMS = 3

# Problems the pipeline adds to the PFX engine's catalogue.
PIPELINE_PROBLEMS: dict[str, str] = {
    "unknown_user": "No user in the directory has this UPN. Add the user or fix the UPN.",
    "no_upn": "The row names no UPN and the certificate carries no UPN or e-mail address of a directory user.",
    "already_imported": "This certificate is already imported for this user and purpose; it was left as it was.",
    "staging_failed": "The staged password could not be read (the staging key changed). Retry with the password.",
    "cancelled": "The import was cancelled before this file was processed.",
    "internal_error": "The file could not be processed because of an internal error. Retry the row.",
    "worker_lost": (
        f"The worker stopped {MAX_LOST_CLAIMS} times while processing this file (out of memory or time?). "
        "Check the file, then retry the row."
    ),
}


def staging_context(batch: ImportBatch, position: int) -> str:
    """What a row's staged password is sealed to: it cannot be unsealed as another row's."""
    return f"{batch.code}:{position}"


def enqueue(batch_id: int, item_ids: Sequence[int], *, size: int = CHUNK_SIZE) -> None:
    """Send the rows to the workers in chunks, once the caller's transaction commits."""
    from certs.tasks import process_chunk_task

    for start in range(0, len(item_ids), size):
        chunk = list(item_ids[start : start + size])
        transaction.on_commit(partial(process_chunk_task.delay, batch_id, chunk))


def process_chunk(batch_id: int, item_ids: Sequence[int]) -> int:
    """Claim the items, unstage their passwords, process them.

    A row is claimable while it is unfinished and unclaimed, or when its claim's lease has run out
    (its worker died): so a second run finds nothing to claim, and a task redelivered after its
    worker died takes the rows over once the lease has ended.
    """
    items = sql.claim_items(batch_id, item_ids, uuid.uuid4(), timezone.now())
    if not items:
        return 0
    batch = ImportBatch.objects.select_related("encryption_key").filter(pk=batch_id).first()
    if batch is None:
        logger.info("import batch %s no longer exists", batch_id)
        return 0
    passwords: dict[int, str] = {}
    for item in items:
        with contextlib.suppress(staging.StagingError):
            passwords[item.pk] = staging.unseal(
                item.staged_password, context=staging_context(batch, item.position)
            )
    process_items(batch, items, passwords)
    return len(items)


@dataclass
class _Outcome:
    item: ImportItem
    inspection: Inspection | None = None
    user: DirectoryUser | None = None
    encrypted: bytes | None = None
    existing: Certificate | None = None


def _fail(item: ImportItem, code: str, message: str | None = None) -> None:
    item.state = ItemState.FAILED
    item.problem_code = code
    item.problem_message = (message or PIPELINE_PROBLEMS.get(code, code))[:1000]


def _users_by_address(outcomes: Iterable[_Outcome]) -> dict[str, DirectoryUser]:
    wanted: set[str] = set()
    for o in outcomes:
        if o.item.upn:
            wanted.add(o.item.upn.lower())
        elif o.inspection is not None:
            wanted |= {a.lower() for a in (*o.inspection.upns, *o.inspection.emails)}
    if not wanted:
        return {}
    # Only the fields the pipeline uses: building 200 full rows (JSON, dates) costs a chunk ~1 ms more.
    users = (
        DirectoryUser.objects.annotate(upn_lower=Lower("upn"))
        .filter(upn_lower__in=wanted, removed_at__isnull=True)
        .only("pk", "upn")
    )
    return {u.upn.lower(): u for u in users}


def _resolve_user(outcome: _Outcome, users: dict[str, DirectoryUser]) -> None:
    item, inspection = outcome.item, outcome.inspection
    assert inspection is not None
    if item.upn:
        outcome.user = users.get(item.upn.lower())
        if outcome.user is None:
            _fail(item, "unknown_user")
        return
    for address in (*inspection.upns, *inspection.emails):
        if address.lower() in users:
            outcome.user = users[address.lower()]
            item.upn = outcome.user.upn
            return
    _fail(item, "no_upn")


def _validate(batch: ImportBatch, outcomes: list[_Outcome], passwords: dict[int, str]) -> None:
    public = public_key(batch.encryption_key.public_key_pem)
    for o in outcomes:
        item = o.item
        if item.pk not in passwords:
            _fail(item, "staging_failed")
            continue
        o.inspection = inspect_pfx(
            bytes(item.pfx),
            passwords[item.pk],
            upn=item.upn or None,
            purpose=item.purpose,
            public_key=public,
            padding=batch.padding,
        )
        ins = o.inspection
        item.thumbprint = ins.thumbprint or ""
        item.subject = (ins.subject or "")[:1000]
        item.not_after = ins.not_after
        item.warnings = [p.to_json() for p in ins.problems if p.severity != "error"]
        if not ins.ok:
            _fail(item, ins.errors[0].code, ins.errors[0].message)
    users = _users_by_address(o for o in outcomes if o.inspection is not None and o.inspection.ok)
    for o in outcomes:
        if o.item.state != ItemState.FAILED:
            _resolve_user(o, users)
    _refuse_shared_keys(o for o in outcomes if o.item.state != ItemState.FAILED)
    for o in outcomes:
        if o.item.state != ItemState.FAILED:
            o.item.state = ItemState.VALIDATED


@dataclass(frozen=True)
class KeyHolder:
    """A stored certificate's user, by the certificate's public key."""

    user_id: int
    upn: str
    thumbprint: str


def key_holders(fingerprints: Iterable[str]) -> dict[str, list[KeyHolder]]:
    """The users whose stored certificates use these public keys: one query on the fingerprint index."""
    wanted = sorted({f for f in fingerprints if f})
    found: dict[str, list[KeyHolder]] = {}
    if not wanted:
        return found
    rows = Certificate.objects.filter(key_fingerprint__in=wanted).order_by("created_at", "pk")
    for fingerprint, user_id, upn, thumbprint in rows.values_list(
        "key_fingerprint", "user_id", "upn", "thumbprint"
    ):
        found.setdefault(fingerprint, []).append(KeyHolder(user_id, upn, thumbprint))
    return found


def key_conflict(fingerprint: str | None, user: DirectoryUser, holders: dict[str, list[KeyHolder]]) -> str:
    """Who else holds this key, as the detail of ``key_held_by_other_user`` ("" when nobody else does)."""
    other = next((h for h in holders.get(fingerprint or "", []) if h.user_id != user.pk), None)
    return f"held by {other.upn}, certificate {other.thumbprint}" if other else ""


def _refuse_shared_keys(outcomes: Iterable[_Outcome]) -> None:
    """A key pair belongs to one person: fail a row whose key another user already holds, in a stored
    certificate or in an earlier row of these outcomes (the first row for a key keeps it)."""
    rows = [o for o in outcomes if o.user is not None and o.inspection and o.inspection.key_fingerprint]
    holders = key_holders(o.inspection.key_fingerprint or "" for o in rows if o.inspection)
    first: dict[str, _Outcome] = {}
    for o in rows:
        assert o.user is not None and o.inspection is not None and o.inspection.key_fingerprint
        fingerprint = o.inspection.key_fingerprint
        detail = key_conflict(fingerprint, o.user, holders)
        if not detail:
            earlier = first.setdefault(fingerprint, o)
            if earlier.user is not None and earlier.user.pk != o.user.pk:
                detail = (
                    f"held by {earlier.user.upn}, row {earlier.item.position + 1} ({earlier.item.filename})"
                )
        if detail:
            _fail(o.item, "key_held_by_other_user", Problem.of("key_held_by_other_user", detail).message)


def _encrypt(batch: ImportBatch, outcomes: list[_Outcome], passwords: dict[int, str]) -> None:
    public = public_key(batch.encryption_key.public_key_pem)
    for o in outcomes:
        if o.item.state != ItemState.VALIDATED:
            continue
        try:
            o.encrypted = encrypt_password(passwords[o.item.pk], public, batch.padding)
        except ProblemError as exc:
            _fail(o.item, exc.code, exc.problem.message)
            continue
        o.item.state = ItemState.ENCRYPTED


def _new_certificate(batch: ImportBatch, o: _Outcome, now: Any) -> Certificate:
    ins, item = o.inspection, o.item
    assert ins is not None and o.user is not None and o.encrypted is not None
    assert ins.thumbprint and ins.not_before and ins.not_after
    key = ins.key or {}
    return Certificate(
        user=o.user,
        upn=o.user.upn,
        thumbprint=ins.thumbprint,
        purpose=item.purpose,
        subject=(ins.subject or "")[:1000],
        issuer=(ins.issuer or "")[:1000],
        serial=(ins.serial or "")[:100],
        not_before=ins.not_before,
        not_after=ins.not_after,
        key_type=str(key.get("type", "")),
        key_size=key.get("bits"),
        key_fingerprint=ins.key_fingerprint or "",
        encryption_key=batch.encryption_key,
        padding=batch.padding,
        pfx_blob=bytes(item.pfx),
        encrypted_password=o.encrypted,
        batch=batch,
        created_at=now,
        updated_at=now,
    )


def _store(batch: ImportBatch, outcomes: list[_Outcome], now: Any) -> list[Certificate]:
    """Insert new certificates and (on request) update re-imported ones; mark skipped duplicates."""
    ready = [o for o in outcomes if o.item.state == ItemState.ENCRYPTED]
    if not ready:
        return []
    # Checked again in this transaction, after the rows validated: a chunk of the same import (or
    # another import) may have stored a certificate for one of these keys meanwhile.
    sql.lock_public_keys(o.inspection.key_fingerprint or "" for o in ready if o.inspection)
    _refuse_shared_keys(ready)
    ready = [o for o in ready if o.item.state == ItemState.ENCRYPTED]
    existing: dict[tuple[str, str, str], Certificate] = {}
    thumbprints = {o.inspection.thumbprint for o in ready if o.inspection}
    upns = {o.user.upn.lower() for o in ready if o.user}
    for found_cert in sql.certificates_of_users(upns):
        if found_cert.thumbprint not in thumbprints:
            continue
        existing[(found_cert.upn.lower(), found_cert.thumbprint, found_cert.purpose)] = found_cert
    new: list[Certificate] = []
    updated: list[Certificate] = []
    seen: dict[tuple[str, str, str], Certificate] = {}
    for o in ready:
        assert o.inspection is not None and o.user is not None
        identity = (o.user.upn.lower(), o.inspection.thumbprint or "", o.item.purpose)
        found = existing.get(identity) or seen.get(identity)
        if found is not None and (batch.on_duplicate == ImportBatch.OnDuplicate.SKIP or identity in seen):
            o.item.state = ItemState.SKIPPED
            o.item.problem_code = "already_imported"
            o.item.problem_message = PIPELINE_PROBLEMS["already_imported"]
            o.item.certificate = found
            continue
        if found is not None:
            fresh = _new_certificate(batch, o, now)
            for field in (
                "pfx_blob",
                "encrypted_password",
                "encryption_key",
                "padding",
                "batch",
                "not_before",
                "key_fingerprint",
            ):
                setattr(found, field, getattr(fresh, field))
            found.graph_state = GraphState.NOT_UPLOADED
            found.updated_at = now
            updated.append(found)
            o.item.certificate = found
        else:
            cert = _new_certificate(batch, o, now)
            new.append(cert)
            seen[identity] = cert
            o.item.certificate = cert
        o.item.state = ItemState.STORED
    sql.insert_certificates(new)
    if updated:
        Certificate.objects.bulk_update(
            updated,
            [
                "pfx_blob",
                "encrypted_password",
                "encryption_key",
                "padding",
                "batch",
                "graph_state",
                "updated_at",
                "key_fingerprint",
            ],
        )
    tag_ids = list(batch.scope_tags.values_list("pk", flat=True))
    through = Certificate.scope_tags.through
    through.objects.bulk_create(
        [through(certificate_id=c.pk, scopetag_id=t) for c in new for t in tag_ids], batch_size=1000
    )
    return [*new, *updated]


def _finish_items(batch: ImportBatch, outcomes: list[_Outcome], now: Any) -> None:
    items = [o.item for o in outcomes]
    if not items:
        return
    for item in items:
        if batch.dry_run and item.state == ItemState.ENCRYPTED:
            item.state = ItemState.VALIDATED
    # A stored row's file lives on in its certificate. A failed row keeps its file only if a retry
    # with the password can fix it (until the retry window ends); no password mends a damaged file.
    # A dry run keeps every file and staged password, for batch_promote, until expire_dry_runs
    # destroys them.
    keep = {i.pk for i in items} if batch.dry_run else {i.pk for i in items if i.retryable}
    sql.write_results(items, keep_files=keep, keep_staged=batch.dry_run, now=now)


def process_items(batch: ImportBatch, items: list[ImportItem], passwords: dict[int, str]) -> None:
    """Validate, encrypt and store claimed items, writing the results of the whole chunk at once."""
    outcomes = [_Outcome(item) for item in items]
    try:
        # No intermediate writes: a chunk takes well under a second, and its rows go from
        # "queued" to their final state in the one statement that writes the results.
        _validate(batch, outcomes, passwords)
        if not batch.dry_run:
            _encrypt(batch, outcomes, passwords)
        _commit(batch, outcomes)
    except OperationalError:
        # The database went away: leave the rows queued for the task's retry to claim again
        # (only those still ours: another worker may have taken them over meanwhile).
        with contextlib.suppress(OperationalError):
            _held(items).update(claim=None, claimed_at=None, state=ItemState.QUEUED)
        raise
    except Exception:
        logger.exception("import batch %s: a chunk of %d items failed", batch.pk, len(items))
        _give_up(batch, items)
        raise
    finally:
        passwords.clear()


def _held(items: Sequence[ImportItem]) -> QuerySet[ImportItem]:
    """The rows of ``items`` still held by the claim they were read with, and unfinished."""
    claims = {item.claim for item in items}
    if not items or None in claims:
        return ImportItem.objects.none()
    return ImportItem.objects.filter(pk__in=[item.pk for item in items], claim__in=claims, done=False)


def _hold(outcomes: list[_Outcome], now: Any) -> list[_Outcome]:
    """Inside the transaction that writes the results: keep only the rows this worker still holds.

    The UPDATE renews the claim and locks the rows (row locks on PostgreSQL; on SQLite the
    transaction holds the write lock from its start), so until the commit no sweep, cancel or
    other worker can change them. Rows whose lease ran out and went to another worker, or that
    were cancelled, are dropped: nothing is stored or written for them by this worker.
    """
    held = _held([o.item for o in outcomes])
    held.update(claimed_at=now)
    ours = set(held.values_list("pk", flat=True))
    if len(ours) < len(outcomes):
        logger.warning(
            "import: %d of %d rows were cancelled or taken over by another worker; their results are dropped",
            len(outcomes) - len(ours),
            len(outcomes),
        )
    return [o for o in outcomes if o.item.pk in ours]


def _commit(batch: ImportBatch, outcomes: list[_Outcome]) -> None:
    now = timezone.now()
    for attempt in range(2):
        try:
            with transaction.atomic():
                held = _hold(outcomes, now)
                stored = [] if batch.dry_run else _store(batch, held, now)
                _finish_items(batch, held, now)
                _audit_chunk(batch, held, stored)
                if stored:
                    # The Graph upload step queues them (on commit) when a tenant is connected.
                    certificates_stored.send(Certificate, certificate_ids=[c.pk for c in stored])
            break
        except IntegrityError:
            # Another chunk stored the same certificate meanwhile: retry once, now seeing it.
            if attempt:
                raise
            for o in outcomes:
                if o.item.state in (ItemState.STORED, ItemState.SKIPPED):
                    o.item.state = ItemState.ENCRYPTED
                    o.item.certificate = None
    finish_batch(batch.pk)


def _audit_chunk(batch: ImportBatch, outcomes: list[_Outcome], stored: list[Certificate]) -> None:
    if not stored:
        return
    actor = Actor(
        user=batch.created_by, name=batch.created_by_name or "PFX Portal", correlation_id=batch.code
    )
    audit.record(
        actor,
        activity="Import certificates",
        category=CERTIFICATES,
        operation=AuditEvent.Operation.CREATE,
        resources=audit.resources(stored, type="Certificate", name=certificate_audit_name),
    )


def certificate_audit_name(certificate: Certificate) -> str:
    return f"{certificate.upn} {certificate.thumbprint} ({certificate.purpose})"


def _give_up(batch: ImportBatch, items: list[ImportItem]) -> None:
    """After an unexpected error, fail the chunk's rows still held and destroy their staged passwords."""
    _held(items).update(
        state=ItemState.FAILED,
        done=True,
        staged_password=None,
        claim=None,
        problem_code="internal_error",
        problem_message=PIPELINE_PROBLEMS["internal_error"],
        finished_at=timezone.now(),
    )
    finish_batch(batch.pk)


def finish_batch(batch_id: int) -> None:
    if not ImportItem.objects.filter(batch_id=batch_id, done=False).exists():
        ImportBatch.objects.filter(pk=batch_id, state=ImportBatch.State.RUNNING).update(
            state=ImportBatch.State.DONE, finished_at=timezone.now()
        )

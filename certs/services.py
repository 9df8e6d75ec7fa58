"""Writes on keys, certificates and import batches. Each is atomic and writes its audit row inside."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, When
from django.db.models.functions import Lower
from django.utils import timezone

from certs import staging
from certs.models import (
    RETRYABLE_PROBLEMS,
    Certificate,
    EncryptionKey,
    GraphState,
    ImportBatch,
    ImportItem,
    ItemState,
    stale_claim_cutoff,
)
from certs.pfx import Inspection, Problem, ProblemError, encrypt_password, inspect_pfx, load_public_key
from certs.pfx import public_key_fingerprint as fingerprint_of
from directory.models import DirectoryUser
from portal import audit
from portal.audit import Actor
from portal.models import AuditEvent, ScopeTag

logger = logging.getLogger(__name__)

CERTIFICATES = "Certificates"
KEYS = "Encryption keys"

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


class ServiceError(Exception):
    """A refused change, with a stable code and a message for the admin."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- Encryption keys ----------------------------------------------------------------


@transaction.atomic
def key_add(
    actor: Actor,
    *,
    data: bytes,
    provider_name: str,
    key_name: str,
    default_padding: str,
    make_default: bool,
    tags: Sequence[ScopeTag],
) -> EncryptionKey:
    """Add a connector public key from a PEM or CNG RSAPUBLICBLOB file. Private keys are refused."""
    try:
        public = load_public_key(data)
    except ProblemError as exc:
        raise ServiceError(exc.code, exc.problem.message) from exc
    fingerprint = fingerprint_of(public)
    if EncryptionKey.objects.filter(fingerprint=fingerprint).exists():
        raise ServiceError("duplicate_key", "This public key is already in the list.")
    if EncryptionKey.objects.filter(provider_name=provider_name, key_name=key_name).exists():
        raise ServiceError("duplicate_key_name", "A key with this provider and key name already exists.")
    first = not EncryptionKey.objects.exists()
    if make_default or first:
        EncryptionKey.objects.filter(is_default=True).update(is_default=False)
    key = EncryptionKey(
        provider_name=provider_name,
        key_name=key_name,
        size=public.key_size,
        fingerprint=fingerprint,
        public_key_pem=public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii"),
        default_padding=default_padding,
        is_default=make_default or first,
        created_by=actor.user,
    )
    key.full_clean()
    key.save()
    key.scope_tags.set(tags)
    fields = ["provider_name", "key_name", "size", "fingerprint", "default_padding", "is_default"]
    changes = audit.changes({}, audit.snapshot(key, fields))
    audit.record(
        actor,
        activity="Add encryption key",
        category=KEYS,
        operation=AuditEvent.Operation.CREATE,
        resources=[audit.resource(key, type="Encryption key", changes=changes)],
    )
    return key


@transaction.atomic
def key_set_default(actor: Actor, *, key: EncryptionKey) -> EncryptionKey:
    previous = EncryptionKey.objects.filter(is_default=True).exclude(pk=key.pk).first()
    EncryptionKey.objects.filter(is_default=True).exclude(pk=key.pk).update(is_default=False)
    EncryptionKey.objects.filter(pk=key.pk).update(is_default=True)
    key.is_default = True
    resources = [
        audit.resource(
            key, type="Encryption key", changes=[{"field": "is_default", "old": False, "new": True}]
        )
    ]
    if previous is not None:
        resources.append(
            audit.resource(
                previous, type="Encryption key", changes=[{"field": "is_default", "old": True, "new": False}]
            )
        )
    audit.record(
        actor,
        activity="Set default encryption key",
        category=KEYS,
        operation=AuditEvent.Operation.UPDATE,
        resources=resources,
    )
    return key


@lru_cache(maxsize=32)
def _public_key(pem: str) -> rsa.RSAPublicKey:
    return load_public_key(pem.encode("ascii"))


# --- Import batches -----------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One file to import. ``password`` is plaintext and lives only in this request's memory."""

    filename: str
    data: bytes
    password: str
    upn: str = ""
    purpose: str = "unassigned"


def _context(batch: ImportBatch, position: int) -> str:
    return f"{batch.code}:{position}"


def _enqueue(batch_id: int, item_ids: Sequence[int], *, size: int = CHUNK_SIZE) -> None:
    from certs.tasks import process_chunk_task

    for start in range(0, len(item_ids), size):
        chunk = list(item_ids[start : start + size])
        transaction.on_commit(partial(process_chunk_task.delay, batch_id, chunk))


@transaction.atomic
def batch_create(
    actor: Actor,
    *,
    kind: str,
    key: EncryptionKey,
    entries: Sequence[Entry],
    tags: Sequence[ScopeTag],
    dry_run: bool = False,
    on_duplicate: str = ImportBatch.OnDuplicate.SKIP,
    enqueue: bool = True,
) -> ImportBatch:
    """Create a batch with one item per file; the passwords are staged (encrypted), and workers take over."""
    batch = ImportBatch.objects.create(
        kind=kind,
        dry_run=dry_run,
        on_duplicate=on_duplicate,
        encryption_key=key,
        padding=key.default_padding,
        total=len(entries),
        created_by=actor.user,
        created_by_name=actor.name[:254],
    )
    batch.scope_tags.set(tags)
    item_ids = _insert_items(batch, entries)
    audit.record(
        actor,
        activity="Start certificate import" + (" (dry run)" if dry_run else ""),
        category=CERTIFICATES,
        operation=AuditEvent.Operation.ACTION,
        resources=[
            audit.resource(
                batch,
                type="Import batch",
                changes=[
                    {"field": "files", "old": None, "new": len(entries)},
                    {"field": "encryption_key", "old": None, "new": str(key)},
                    {"field": "on_duplicate", "old": None, "new": on_duplicate},
                ],
            )
        ],
    )
    if enqueue:
        _enqueue(batch.pk, item_ids)
    return batch


# Columns of a new import item, in the order _insert_items writes them.
_ITEM_COLUMNS = (
    "batch_id",
    "position",
    "filename",
    "upn",
    "purpose",
    "state",
    "done",
    "pfx",
    "staged_password",
    "attempts",
    "problem_code",
    "problem_message",
    "warnings",
    "thumbprint",
    "subject",
)


_ITEM_TYPES = (
    "int8",
    "int4",
    "text",
    "text",
    "text",
    "text",
    "bool",
    "bytea",
    "bytea",
    "int2",
    "text",
    "text",
    "jsonb",
    "text",
    "text",
)


def _insert_items(batch: ImportBatch, entries: Sequence[Entry]) -> list[int]:
    """Insert the batch's items (one per file, password staged) and return their ids by position.

    On PostgreSQL the rows go in with one COPY (10,000 files: well under a second, against
    several seconds for INSERTs); elsewhere with bulk_create. Either way inside the caller's
    transaction, so a failed upload leaves nothing behind.
    """
    rows: Iterator[tuple[Any, ...]] = (
        (
            batch.pk,
            position,
            entry.filename[:255],
            entry.upn.strip()[:255],
            entry.purpose,
            ItemState.QUEUED.value,
            False,
            entry.data,
            staging.seal(entry.password, context=_context(batch, position)),
            0,
            "",
            "",
            [],
            "",
            "",
        )
        for position, entry in enumerate(entries)
    )
    if connection.vendor != "postgresql":
        items = [ImportItem(**dict(zip(_ITEM_COLUMNS, row, strict=True))) for row in rows]
        return [item.pk for item in ImportItem.objects.bulk_create(items, batch_size=500)]
    table = connection.ops.quote_name(ImportItem._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _ITEM_COLUMNS)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        # Binary COPY: the files go as they are, not hex-escaped.
        with raw.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_ITEM_TYPES)
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"SELECT id FROM {table} WHERE batch_id = %s ORDER BY position", [batch.pk])
        return [row[0] for row in cursor.fetchall()]


def certificate_import(
    actor: Actor,
    *,
    entry: Entry,
    key: EncryptionKey,
    tags: Sequence[ScopeTag],
    on_duplicate: str = ImportBatch.OnDuplicate.SKIP,
) -> ImportItem:
    """Import one file now, in this process: the password never leaves the request's memory."""
    with transaction.atomic():
        batch = ImportBatch.objects.create(
            kind=ImportBatch.Kind.SINGLE,
            on_duplicate=on_duplicate,
            encryption_key=key,
            padding=key.default_padding,
            total=1,
            created_by=actor.user,
            created_by_name=actor.name[:254],
        )
        batch.scope_tags.set(tags)
        item = ImportItem.objects.create(
            batch=batch,
            position=0,
            filename=entry.filename[:255],
            upn=entry.upn.strip(),
            purpose=entry.purpose,
            pfx=entry.data,
            claim=uuid.uuid4(),
            claimed_at=timezone.now(),
        )
    process_items(batch, [item], {item.pk: entry.password})
    item.refresh_from_db()
    return item


@dataclass(frozen=True)
class Preview:
    """The live check of the single import: what the engine finds, and what Import would then do."""

    inspection: Inspection
    # "import" (a new certificate), "update" or "skip" (already imported), "refused" (an error)
    outcome: str
    existing: Certificate | None = None

    @property
    def ok(self) -> bool:
        return self.inspection.ok


def preview(
    entry: Entry,
    key: EncryptionKey,
    padding: str | None = None,
    *,
    user: DirectoryUser | None = None,
    on_duplicate: str = ImportBatch.OnDuplicate.SKIP,
) -> Preview:
    """What the engine says about a file before anything is stored, and (given the user) whether
    another user holds its key and whether it is already imported."""
    inspection = inspect_pfx(
        entry.data,
        entry.password,
        upn=entry.upn or None,
        purpose=entry.purpose,
        public_key=_public_key(key.public_key_pem),
        padding=padding or key.default_padding,
    )
    if user is not None and inspection.key_fingerprint:
        holders = key_holders([inspection.key_fingerprint])
        if detail := key_conflict(inspection.key_fingerprint, user, holders):
            problem = Problem.of("key_held_by_other_user", detail)
            inspection = replace(inspection, ok=False, problems=(problem, *inspection.problems))
    if not inspection.ok:
        return Preview(inspection, "refused")
    existing = None
    if user is not None:
        existing = (
            Certificate.objects.annotate(upn_lower=Lower("upn"))
            .filter(upn_lower=user.upn.lower(), thumbprint=inspection.thumbprint, purpose=entry.purpose)
            .defer("pfx_blob", "encrypted_password")
            .first()
        )
    if existing is None:
        return Preview(inspection, "import")
    return Preview(inspection, "skip" if on_duplicate == ImportBatch.OnDuplicate.SKIP else "update", existing)


def process_chunk(batch_id: int, item_ids: Sequence[int]) -> int:
    """Claim the items, unstage their passwords, process them.

    A row is claimable while it is unfinished and unclaimed, or when its claim's lease has run out
    (its worker died): so a second run finds nothing to claim, and a task redelivered after its
    worker died takes the rows over once the lease has ended.
    """
    claim = uuid.uuid4()
    now = timezone.now()
    if connection.vendor == "postgresql":
        items = _claim_postgresql(batch_id, item_ids, claim, now)
    else:
        claimable = Q(claim__isnull=True) | Q(claimed_at__lt=stale_claim_cutoff(now))
        # Taking over an expired claim counts as a worker lost on that row.
        lost = Case(
            When(claim__isnull=False, then=F("lost_claims") + 1),
            default=F("lost_claims"),
            output_field=IntegerField(),
        )
        claimed = (
            ImportItem.objects.filter(batch_id=batch_id, pk__in=item_ids, done=False)
            .filter(claimable)
            .update(claim=claim, claimed_at=now, lost_claims=lost)
        )
        items = list(ImportItem.objects.filter(claim=claim).order_by("position")) if claimed else []
    if not items:
        return 0
    batch = ImportBatch.objects.select_related("encryption_key").filter(pk=batch_id).first()
    if batch is None:
        logger.info("import batch %s no longer exists", batch_id)
        return 0
    passwords: dict[int, str] = {}
    for item in items:
        with contextlib.suppress(staging.StagingError):
            passwords[item.pk] = staging.unseal(item.staged_password, context=_context(batch, item.position))
    process_items(batch, items, passwords)
    return len(items)


def _claim_postgresql(batch_id: int, item_ids: Sequence[int], claim: uuid.UUID, now: Any) -> list[ImportItem]:
    """Claim the chunk and read its rows in one statement (UPDATE ... RETURNING), files as binary."""
    fields = list(ImportItem._meta.concrete_fields)
    names = [f.attname for f in fields]
    table = connection.ops.quote_name(ImportItem._meta.db_table)
    returning = ", ".join(
        f"{connection.ops.quote_name(f.column or f.attname)}{'::text' if f.attname == 'warnings' else ''}"
        for f in fields
    )
    sql = (
        f"UPDATE {table} SET claim = %s, claimed_at = %s, lost_claims = lost_claims + (claim IS NOT NULL)::int "
        f"WHERE batch_id = %s AND id = ANY(%s) AND NOT done AND (claim IS NULL OR claimed_at < %s) "
        f"RETURNING {returning}"
    )
    with connection.wrap_database_errors, _server_cursor() as cursor:
        cursor.execute(sql, [claim, now, batch_id, list(item_ids), stale_claim_cutoff(now)], binary=True)
        rows = cursor.fetchall()
    warnings = names.index("warnings")
    items = []
    for row in rows:
        values = list(row)
        values[warnings] = json.loads(values[warnings]) if values[warnings] else []
        items.append(ImportItem.from_db(connection.alias, names, values))
    items.sort(key=lambda item: item.position)
    return items


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
    users = DirectoryUser.objects.annotate(upn_lower=Lower("upn")).filter(
        upn_lower__in=wanted, removed_at__isnull=True
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
    public = _public_key(batch.encryption_key.public_key_pem)
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
    public = _public_key(batch.encryption_key.public_key_pem)
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


def _certificates_of(upns: set[str]) -> Iterable[Certificate]:
    """The certificates of these users (by lower-case UPN), without their blobs.

    On PostgreSQL one probe of the unique index per UPN, whatever the table's statistics say
    (an IN list on a table growing during a bulk import gets a sequential scan); the thumbprints
    stay out of the condition, which would probe the index once per (UPN, thumbprint) pair.
    """
    certificates = Certificate.objects.defer("pfx_blob", "encrypted_password")
    if connection.vendor != "postgresql":
        return certificates.annotate(upn_lower=Lower("upn")).filter(upn_lower__in=upns)
    table = connection.ops.quote_name(Certificate._meta.db_table)
    sql = (
        f"SELECT c.id FROM unnest(%s::text[]) AS w(upn) "
        f"CROSS JOIN LATERAL (SELECT id FROM {table} WHERE lower(upn) = w.upn) AS c"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [sorted(upns)])
        ids = [row[0] for row in cursor.fetchall()]
    return certificates.filter(pk__in=ids) if ids else []


def _store(batch: ImportBatch, outcomes: list[_Outcome], now: Any) -> list[Certificate]:
    """Insert new certificates and (on request) update re-imported ones; mark skipped duplicates."""
    ready = [o for o in outcomes if o.item.state == ItemState.ENCRYPTED]
    if not ready:
        return []
    # Checked again in this transaction, after the rows validated: a chunk of the same import (or
    # another import) may have stored a certificate for one of these keys meanwhile.
    _lock_keys(o.inspection.key_fingerprint or "" for o in ready if o.inspection)
    _refuse_shared_keys(ready)
    ready = [o for o in ready if o.item.state == ItemState.ENCRYPTED]
    existing: dict[tuple[str, str, str], Certificate] = {}
    thumbprints = {o.inspection.thumbprint for o in ready if o.inspection}
    upns = {o.user.upn.lower() for o in ready if o.user}
    for found_cert in _certificates_of(upns):
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
    _insert_certificates(new)
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


def _lock_keys(fingerprints: Iterable[str]) -> None:
    """On PostgreSQL, hold a transaction lock per public key, so two chunks storing certificates of
    one key pair for different users take turns and the second sees the first's certificate.
    (SQLite runs one writing transaction at a time.)"""
    keys = sorted({int.from_bytes(bytes.fromhex(f[:16]), "big", signed=True) for f in fingerprints if f})
    if not keys or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        # In one order for every chunk, so two chunks never wait on each other's locks.
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM "
            "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k OFFSET 0) AS ordered",
            [keys],
        )


def _server_cursor() -> Any:
    """A cursor of the PostgreSQL connection that binds parameters on the server (blobs go as binary,
    not as escaped text in the SQL), inside the current transaction. Errors are wrapped as Django's."""
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _insert_certificates(new: list[Certificate]) -> None:
    """Insert the chunk's new certificates. On PostgreSQL: one INSERT from arrays bound on the server."""
    if not new:
        return
    if connection.vendor != "postgresql":
        Certificate.objects.bulk_create(new)
        return
    fields = [f for f in Certificate._meta.concrete_fields if not f.primary_key]
    for cert in new:
        for f in fields:
            if getattr(cert, f.attname) is None and f.has_default():
                setattr(cert, f.attname, f.get_default())
    columns = ", ".join(connection.ops.quote_name(f.column or f.attname) for f in fields)
    # Blobs as binary parameters (%b): as text, hex-escaping 100 files costs more than the INSERT.
    arrays = ", ".join(
        f"%{'b' if f.get_internal_type() == 'BinaryField' else 's'}::{f.db_type(connection)}[]"
        for f in fields
    )
    table = connection.ops.quote_name(Certificate._meta.db_table)
    values = [[f.get_db_prep_save(getattr(c, f.attname), connection) for c in new] for f in fields]
    with connection.wrap_database_errors, _server_cursor() as cursor:
        # Rows come back in the order of the arrays (as with Django's own UNNEST inserts).
        cursor.execute(f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}) RETURNING id", values)
        ids = [row[0] for row in cursor.fetchall()]
    for cert, pk in zip(new, ids, strict=True):
        cert.pk = pk
        cert._state.adding = False
        cert._state.db = connection.alias


# The per-row results of a chunk, written in one statement (an UPDATE joined to a VALUES
# list). Django's bulk_update builds a CASE per field and row, which costs more than the
# PFX work itself on a 100-row chunk.
_RESULT_COLUMNS = (
    ("state", "text"),
    ("upn", "text"),
    ("problem_code", "text"),
    ("problem_message", "text"),
    ("warnings", "jsonb"),
    ("thumbprint", "text"),
    ("subject", "text"),
    ("not_after", "timestamptz"),
    ("certificate_id", "bigint"),
    ("attempts", "integer"),
)


def _write_results(
    items: list[ImportItem], *, keep_files: set[int], now: Any, keep_staged: bool = False
) -> None:
    """One statement per chunk: each row's result, its staged password destroyed (unless
    ``keep_staged``: a dry run's), its claim released.

    Only rows still held by the claim they were processed under are written (the caller has
    checked and locked them in the same transaction; the condition keeps the statement honest).
    """
    if connection.vendor == "postgresql":
        _write_results_postgresql(items, keep_files=keep_files, keep_staged=keep_staged, now=now)
        return
    ops = connection.ops
    claim_field = ImportItem._meta.get_field("claim")
    rows: list[Any] = []
    for item in items:
        rows += [
            item.pk,
            claim_field.get_db_prep_value(item.claim, connection),
            item.state,
            item.upn,
            item.problem_code,
            item.problem_message,
            json.dumps(item.warnings),
            item.thumbprint,
            item.subject,
            ops.adapt_datetimefield_value(item.not_after),
            item.certificate.pk if item.certificate else None,
            item.attempts + 1,
            1 if item.pk in keep_files else 0,
        ]
    names = ["id", "claim", *(name for name, _ in _RESULT_COLUMNS), "keep_file"]
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(names)) + ")"] * len(items))
    table = ops.quote_name(ImportItem._meta.db_table)

    assignments = [f"{ops.quote_name(name)} = v.{name}" for name, _ in _RESULT_COLUMNS]
    assignments += [
        f"pfx = CASE WHEN v.keep_file = 1 THEN {table}.pfx ELSE X'' END",
        # destroyed on success and on failure alike; a dry run keeps them for its promotion
        *([] if keep_staged else ["staged_password = NULL"]),
        "claim = NULL",
        "done = %s",
        "finished_at = %s",
    ]
    sql = (
        f"WITH v({', '.join(names)}) AS (VALUES {placeholders}) "
        f"UPDATE {table} SET {', '.join(assignments)} FROM v WHERE {table}.id = v.id AND {table}.claim = v.claim"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*rows, True, ops.adapt_datetimefield_value(now)])


def _write_results_postgresql(
    items: list[ImportItem], *, keep_files: set[int], now: Any, keep_staged: bool = False
) -> None:
    """The same statement on PostgreSQL, joined to arrays bound on the server (one per column)."""
    columns: dict[str, list[Any]] = {name: [] for name, _ in _RESULT_COLUMNS}
    ids: list[int] = []
    claims: list[uuid.UUID | None] = []
    keep: list[bool] = []
    for item in items:
        ids.append(item.pk)
        claims.append(item.claim)
        keep.append(item.pk in keep_files)
        columns["state"].append(item.state)
        columns["upn"].append(item.upn)
        columns["problem_code"].append(item.problem_code)
        columns["problem_message"].append(item.problem_message)
        columns["warnings"].append(json.dumps(item.warnings))
        columns["thumbprint"].append(item.thumbprint)
        columns["subject"].append(item.subject)
        columns["not_after"].append(item.not_after)
        columns["certificate_id"].append(item.certificate.pk if item.certificate else None)
        columns["attempts"].append(item.attempts + 1)
    table = connection.ops.quote_name(ImportItem._meta.db_table)
    names = [name for name, _ in _RESULT_COLUMNS]
    arrays = ", ".join(
        ["%s::bigint[]", "%s::uuid[]", *(f"%s::{cast}[]" for _, cast in _RESULT_COLUMNS), "%s::boolean[]"]
    )
    assignments = [f"{connection.ops.quote_name(name)} = v.{name}" for name in names]
    assignments += [
        f"pfx = CASE WHEN v.keep_file THEN {table}.pfx ELSE ''::bytea END",
        # destroyed on success and on failure alike; a dry run keeps them for its promotion
        *([] if keep_staged else ["staged_password = NULL"]),
        "claim = NULL",
        "done = true",
        "finished_at = %s",
    ]
    sql = (
        f"UPDATE {table} SET {', '.join(assignments)} "
        f"FROM unnest({arrays}) AS v(id, claim, {', '.join(names)}, keep_file) "
        f"WHERE {table}.id = v.id AND {table}.claim = v.claim"
    )
    with connection.wrap_database_errors, _server_cursor() as cursor:
        cursor.execute(sql, [now, ids, claims, *columns.values(), keep])


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
    _write_results(items, keep_files=keep, keep_staged=batch.dry_run, now=now)


def after_store(certificate_ids: Sequence[int]) -> None:
    """Hand stored certificates to the Graph upload step (its tasks are sent on commit)."""
    from graph.models import TenantConnection
    from graph.uploads import queue_uploads

    # Without a tenant connection they stay "stored, not uploaded" until one is set up.
    if certificate_ids and TenantConnection.current() is not None:
        queue_uploads(certificate_ids)


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
                ids = [c.pk for c in stored]
                transaction.on_commit(partial(after_store, ids))
            break
        except IntegrityError:
            # Another chunk stored the same certificate meanwhile: retry once, now seeing it.
            if attempt:
                raise
            for o in outcomes:
                if o.item.state in (ItemState.STORED, ItemState.SKIPPED):
                    o.item.state = ItemState.ENCRYPTED
                    o.item.certificate = None
    _finish_batch(batch.pk)


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
        resources=audit.resources(stored, type="Certificate", name=_audit_name),
    )


def _audit_name(certificate: Certificate) -> str:
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
    _finish_batch(batch.pk)


def _finish_batch(batch_id: int) -> None:
    if not ImportItem.objects.filter(batch_id=batch_id, done=False).exists():
        ImportBatch.objects.filter(pk=batch_id, state=ImportBatch.State.RUNNING).update(
            state=ImportBatch.State.DONE, finished_at=timezone.now()
        )


@transaction.atomic
def batch_cancel(actor: Actor, *, batch: ImportBatch) -> int:
    """Stop a batch: every unfinished row is cancelled and its staged password destroyed.

    That includes rows a worker holds (or held, if it died): a worker finishing them later finds
    its claim gone and writes nothing. A chunk committing at this moment keeps its results (on
    PostgreSQL this UPDATE waits for it and then skips its rows), so the count is the true one.
    """
    if batch.state != ImportBatch.State.RUNNING:
        raise ServiceError("not_running", "This import has already finished.")
    cancelled = ImportItem.objects.filter(batch=batch, done=False).update(
        state=ItemState.CANCELLED,
        done=True,
        staged_password=None,
        claim=None,
        claimed_at=None,
        problem_code="cancelled",
        problem_message=PIPELINE_PROBLEMS["cancelled"],
        finished_at=timezone.now(),
    )
    ImportBatch.objects.filter(pk=batch.pk).update(
        state=ImportBatch.State.CANCELLED, finished_at=timezone.now()
    )
    batch.refresh_from_db()
    audit.record(
        actor,
        activity="Cancel certificate import",
        category=CERTIFICATES,
        operation=AuditEvent.Operation.ACTION,
        resources=[
            audit.resource(
                batch,
                type="Import batch",
                changes=[{"field": "cancelled_rows", "old": None, "new": cancelled}],
            )
        ],
    )
    return cancelled


@transaction.atomic
def items_retry(actor: Actor, *, batch: ImportBatch, passwords: dict[int, str]) -> int:
    """Queue failed rows again with the passwords the admin re-entered (keyed by item id).

    Only rows a password can fix still have their file, and only until the batch's retry window ends.
    """
    if not batch.retry_open:
        raise ServiceError(
            "retry_window_over",
            "The files of this import are no longer kept for a retry. Import the files again.",
        )
    items = list(
        ImportItem.objects.select_for_update()
        .filter(
            batch=batch,
            pk__in=list(passwords),
            state__in=[ItemState.FAILED, ItemState.CANCELLED],
            problem_code__in=RETRYABLE_PROBLEMS,
        )
        .exclude(pfx=b"")
        .defer("pfx")
    )
    if not items:
        raise ServiceError("nothing_to_retry", "Enter the password of at least one row that can be retried.")
    now = timezone.now()
    for item in items:
        item.state = ItemState.QUEUED
        item.done = False
        item.claim = None
        item.claimed_at = None
        item.queued_at = now
        item.lost_claims = 0
        item.problem_code = ""
        item.problem_message = ""
        item.staged_password = staging.seal(passwords[item.pk], context=_context(batch, item.position))
    ImportItem.objects.bulk_update(
        items,
        [
            "state",
            "done",
            "claim",
            "claimed_at",
            "queued_at",
            "lost_claims",
            "problem_code",
            "problem_message",
            "staged_password",
        ],
    )
    ImportBatch.objects.filter(pk=batch.pk).update(state=ImportBatch.State.RUNNING, finished_at=None)
    audit.record(
        actor,
        activity="Retry failed import rows",
        category=CERTIFICATES,
        operation=AuditEvent.Operation.ACTION,
        resources=[
            audit.resource(
                batch,
                type="Import batch",
                changes=[{"field": "retried_rows", "old": None, "new": len(items)}],
            )
        ],
    )
    _enqueue(batch.pk, [i.pk for i in items])
    return len(items)


def dry_run_keep_hours() -> int:
    return int(getattr(settings, "CERTS_DRY_RUN_KEEP_HOURS", 24))


def promotion_deadline(batch: ImportBatch) -> datetime | None:
    """Until when a finished dry run can be imported for real (None: not a finished dry run)."""
    if not batch.dry_run or batch.state != ImportBatch.State.DONE or batch.finished_at is None:
        return None
    return batch.finished_at + timedelta(hours=dry_run_keep_hours())


@transaction.atomic
def batch_promote(actor: Actor, *, batch: ImportBatch) -> ImportBatch:
    """Import a finished dry run for real: a new batch of the same files, users, purposes and staged
    passwords, so nothing is uploaded again. The dry run gives its files and passwords up to it."""
    dry = ImportBatch.objects.select_for_update().select_related("encryption_key").get(pk=batch.pk)
    if not dry.dry_run:
        raise ServiceError("not_a_dry_run", "This import was not a dry run.")
    if ImportBatch.objects.filter(promoted_from=dry).exists():
        raise ServiceError("already_promoted", "The files of this dry run have already been imported.")
    deadline = promotion_deadline(dry)
    if deadline is None:
        raise ServiceError("dry_run_not_finished", "Only a dry run that has finished can be imported.")
    if deadline <= timezone.now():
        raise ServiceError(
            "dry_run_expired",
            f"A dry run keeps its files and passwords for {dry_run_keep_hours()} hours; this one's have been "
            "destroyed. Upload the files again.",
        )
    real = ImportBatch.objects.create(
        kind=dry.kind,
        on_duplicate=dry.on_duplicate,
        encryption_key=dry.encryption_key,
        padding=dry.padding,
        total=dry.total,
        created_by=actor.user,
        created_by_name=actor.name[:254],
        promoted_from=dry,
    )
    real.scope_tags.set(dry.scope_tags.all())
    item_ids = _copy_items(dry, real)
    audit.record(
        actor,
        activity="Start certificate import (from dry run)",
        category=CERTIFICATES,
        operation=AuditEvent.Operation.ACTION,
        resources=[
            audit.resource(
                real,
                type="Import batch",
                changes=[
                    {"field": "files", "old": None, "new": len(item_ids)},
                    {"field": "encryption_key", "old": None, "new": str(dry.encryption_key)},
                    {"field": "on_duplicate", "old": None, "new": dry.on_duplicate},
                    {"field": "dry_run", "old": None, "new": str(dry.code)},
                ],
            )
        ],
    )
    _enqueue(real.pk, item_ids)
    return real


def _copy_items(dry: ImportBatch, real: ImportBatch) -> list[int]:
    """Copy the dry run's rows (files copied inside the database) and move their staged passwords,
    sealed again for the new rows; the dry run keeps neither."""
    table = connection.ops.quote_name(ImportItem._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _ITEM_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) "
            f"SELECT %s, position, filename, upn, purpose, %s, %s, pfx, NULL, 0, '', '', '[]', '', '' "
            f"FROM {table} WHERE batch_id = %s",
            [real.pk, ItemState.QUEUED.value, False, dry.pk],
        )
    ids = dict(real.items.values_list("position", "pk"))
    sealed = []
    for position, staged in dry.items.filter(staged_password__isnull=False).values_list(
        "position", "staged_password"
    ):
        try:
            password = staging.unseal(staged, context=_context(dry, position))
        except staging.StagingError:
            continue  # the row fails with staging_failed and can be retried with its password
        sealed.append(
            ImportItem(
                pk=ids[position], staged_password=staging.seal(password, context=_context(real, position))
            )
        )
    ImportItem.objects.bulk_update(sealed, ["staged_password"], batch_size=1000)
    dry.items.update(staged_password=None, pfx=b"")
    return [ids[position] for position in sorted(ids)]


def expire_dry_runs(now: datetime | None = None) -> int:
    """Destroy the files and staged passwords of dry runs that finished longer ago than they are kept."""
    cutoff = (now or timezone.now()) - timedelta(hours=dry_run_keep_hours())
    kept = Q(staged_password__isnull=False) | ~Q(pfx=b"")
    return (
        ImportItem.objects.filter(batch__dry_run=True, batch__finished_at__lt=cutoff)
        .filter(kept)
        .update(staged_password=None, pfx=b"")
    )


def sweep_stalled_items(
    *, claimed_before: datetime | None = None, queued_before: datetime | None = None
) -> int:
    """Queue again the rows whose worker died (their lease ran out) or whose task message was lost.

    Runs from beat every minute, so a row held by a dead worker is queued again at most
    ``CERTS_CLAIM_LEASE_SECONDS`` + 60 s after the worker died. Each row is released by one
    conditional UPDATE (still unfinished, claim still expired): of two sweeps, or a sweep and a
    redelivered task taking the same expired claim over, exactly one wins, and the row's next
    claim decides which worker processes it. Returns the number of rows queued again.
    """
    now = timezone.now()
    claimed_before = claimed_before or stale_claim_cutoff(now)
    queued_before = queued_before or stale_claim_cutoff(now)
    unfinished = ImportItem.objects.filter(done=False)
    expired = Q(claim__isnull=False, claimed_at__lt=claimed_before)
    with transaction.atomic():
        # The last loss a row may have: it fails alone, keeping its file for a retry.
        doomed = list(
            unfinished.filter(expired, lost_claims__gte=MAX_LOST_CLAIMS - 1).values_list("pk", flat=True)
        )
        lost = 0
        if doomed:
            lost = unfinished.filter(expired, pk__in=doomed).update(
                state=ItemState.FAILED,
                done=True,
                staged_password=None,
                claim=None,
                lost_claims=F("lost_claims") + 1,
                problem_code="worker_lost",
                problem_message=PIPELINE_PROBLEMS["worker_lost"],
                finished_at=now,
            )
        # ``now`` marks the rows this transaction releases: they stay locked (or, on SQLite,
        # unwritable by others) until the commit, so the SELECT below reads exactly those.
        unfinished.filter(expired).update(
            claim=None, claimed_at=None, queued_at=now, lost_claims=F("lost_claims") + 1
        )
        unfinished.filter(claim__isnull=True, queued_at__lt=queued_before).update(queued_at=now)
        released = list(
            unfinished.filter(claim__isnull=True, queued_at=now)
            .order_by("batch_id", "position")
            .values_list("batch_id", "pk", "lost_claims")
        )
        by_batch: dict[int, tuple[list[int], list[int]]] = {}
        for batch_id, pk, losses in released:
            chunked, alone = by_batch.setdefault(batch_id, ([], []))
            (alone if losses > 1 else chunked).append(pk)
        for batch_id, (chunked, alone) in by_batch.items():
            _enqueue(batch_id, chunked)
            _enqueue(batch_id, alone, size=1)
    if lost:
        logger.warning("import: %d rows failed with worker_lost after their worker stopped repeatedly", lost)
    if released:
        logger.warning(
            "import: %d rows whose worker stopped or whose task was lost were queued again", len(released)
        )
    # Batches whose last chunk's worker died after writing its results, or whose rows just failed.
    for batch_id in (
        ImportBatch.objects.filter(state=ImportBatch.State.RUNNING)
        .exclude(items__done=False)
        .values_list("pk", flat=True)
    ):
        _finish_batch(batch_id)
    return len(released)


def purge_retry_files(*, finished_before: datetime | None = None) -> int:
    """Delete the files kept for a retry once their batch's retry window has ended (hourly, from beat).

    Also any finished row's file that no retry can use (rows finished before files were kept only
    for a retry): the only files left are those of retryable rows inside their window. Dry runs
    keep theirs for promotion until ``expire_dry_runs`` destroys them.
    """
    finished_before = finished_before or timezone.now() - timedelta(days=settings.CERTS_RETRY_WINDOW_DAYS)
    retryable = Q(
        state__in=[ItemState.FAILED, ItemState.CANCELLED],
        problem_code__in=RETRYABLE_PROBLEMS,
        batch__dry_run=False,
    ) & (Q(batch__finished_at__isnull=True) | Q(batch__finished_at__gte=finished_before))
    kept = ImportItem.objects.filter(done=True, batch__dry_run=False).exclude(pfx=b"")
    return kept.exclude(retryable).update(pfx=b"")


def batch_counts(batch: ImportBatch) -> dict[str, int]:
    counts = {state.value: 0 for state in ItemState}
    for row in batch.items.values("state").annotate(n=Count("pk")):
        counts[row["state"]] = row["n"]
    return counts


# --- Certificates -------------------------------------------------------------------


@transaction.atomic
def certificate_delete(actor: Actor, *, certificate: Certificate) -> None:
    resource = audit.resource(
        certificate,
        type="Certificate",
        name=f"{certificate.upn} {certificate.thumbprint} ({certificate.purpose})",
        changes=[{"field": "not_after", "old": certificate.not_after.isoformat(), "new": None}],
    )
    # Its copy in Intune goes too, after this transaction commits.
    from graph.uploads import certificate_deleted

    certificate_deleted(certificate)
    certificate.delete()
    audit.record(
        actor,
        activity="Delete certificate",
        category=CERTIFICATES,
        operation=AuditEvent.Operation.DELETE,
        resources=[resource],
    )


@transaction.atomic
def remove_expired(actor: Actor, *, certificates: QuerySet[Certificate]) -> int:
    """Delete the given certificates that have expired (valid ones are never touched here)."""
    expired = list(certificates.filter(not_after__lte=timezone.now()).select_for_update())
    if not expired:
        raise ServiceError("nothing_expired", "None of the selected certificates has expired.")
    resources = audit.resources(expired, type="Certificate", name=_audit_name)
    from graph.uploads import certificate_deleted

    for certificate in expired:
        certificate_deleted(certificate)
    Certificate.objects.filter(pk__in=[c.pk for c in expired]).delete()
    audit.record(
        actor,
        activity="Remove expired certificates",
        category=CERTIFICATES,
        operation=AuditEvent.Operation.DELETE,
        resources=resources,
    )
    return len(expired)

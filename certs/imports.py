"""What an admin does to an import: start one, cancel it, retry its failed rows, import a dry run for real.

Each write is atomic with its audit row; the rows then go to the workers (``certs.pipeline``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from certs import pipeline, sql, staging
from certs.models import EncryptionKey, ImportBatch, ImportItem, ItemState, retryable_with_password
from certs.pipeline import CERTIFICATES, PIPELINE_PROBLEMS, staging_context
from portal import audit
from portal.audit import Actor
from portal.lib.refusal import Refused
from portal.models import AuditEvent, ScopeTag


@dataclass(frozen=True)
class Entry:
    """One file to import. ``password`` is plaintext and lives only in this request's memory."""

    filename: str
    data: bytes
    password: str
    upn: str = ""
    purpose: str = "unassigned"


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
        pipeline.enqueue(batch.pk, item_ids)
    return batch


def _insert_items(batch: ImportBatch, entries: Sequence[Entry]) -> list[int]:
    """Insert the batch's items (one per file, password staged) and return their ids by position."""
    return sql.insert_items(
        batch.pk,
        (
            {
                "position": position,
                "filename": entry.filename[:255],
                "upn": entry.upn.strip()[:255],
                "purpose": entry.purpose,
                "pfx": entry.data,
                "staged_password": staging.seal(entry.password, context=staging_context(batch, position)),
            }
            for position, entry in enumerate(entries)
        ),
    )


@transaction.atomic
def batch_cancel(actor: Actor, *, batch: ImportBatch) -> int:
    """Stop a batch: every unfinished row is cancelled and its staged password destroyed.

    That includes rows a worker holds (or held, if it died): a worker finishing them later finds
    its claim gone and writes nothing. A chunk committing at this moment keeps its results (on
    PostgreSQL this UPDATE waits for it and then skips its rows), so the count is the true one.
    """
    if batch.state != ImportBatch.State.RUNNING:
        raise Refused("not_running", "This import has already finished.")
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
        raise Refused(
            "retry_window_over",
            "The files of this import are no longer kept for a retry. Import the files again.",
        )
    items = list(
        ImportItem.objects.select_for_update()
        .filter(retryable_with_password(), batch=batch, pk__in=list(passwords))
        .defer("pfx")
    )
    if not items:
        raise Refused("nothing_to_retry", "Enter the password of at least one row that can be retried.")
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
        item.staged_password = staging.seal(passwords[item.pk], context=staging_context(batch, item.position))
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
    pipeline.enqueue(batch.pk, [i.pk for i in items])
    return len(items)


def dry_run_keep_hours() -> int:
    return int(settings.CERTS_DRY_RUN_KEEP_HOURS)


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
        raise Refused("not_a_dry_run", "This import was not a dry run.")
    if ImportBatch.objects.filter(promoted_from=dry).exists():
        raise Refused("already_promoted", "The files of this dry run have already been imported.")
    deadline = promotion_deadline(dry)
    if deadline is None:
        raise Refused("dry_run_not_finished", "Only a dry run that has finished can be imported.")
    if deadline <= timezone.now():
        raise Refused(
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
    pipeline.enqueue(real.pk, item_ids)
    return real


def _copy_items(dry: ImportBatch, real: ImportBatch) -> list[int]:
    """Copy the dry run's rows (files copied inside the database) and move their staged passwords,
    sealed again for the new rows; the dry run keeps neither."""
    sql.copy_items(dry.pk, real.pk)
    ids = dict(real.items.values_list("position", "pk"))
    sealed = []
    for position, staged in dry.items.filter(staged_password__isnull=False).values_list(
        "position", "staged_password"
    ):
        try:
            password = staging.unseal(staged, context=staging_context(dry, position))
        except staging.StagingError:
            continue  # the row fails with staging_failed and can be retried with its password
        sealed.append(
            ImportItem(
                pk=ids[position],
                staged_password=staging.seal(password, context=staging_context(real, position)),
            )
        )
    ImportItem.objects.bulk_update(sealed, ["staged_password"], batch_size=1000)
    dry.items.update(staged_password=None, pfx=b"")
    return [ids[position] for position in sorted(ids)]


def batch_counts(batch: ImportBatch) -> dict[str, int]:
    counts = {state.value: 0 for state in ItemState}
    for row in batch.items.values("state").annotate(n=Count("pk")):
        counts[row["state"]] = row["n"]
    return counts

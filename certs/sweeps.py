"""What beat runs on imports: rows whose worker died queued again, kept files and passwords destroyed."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from certs.imports import dry_run_keep_hours
from certs.models import RETRYABLE_PROBLEMS, ImportBatch, ImportItem, ItemState, stale_claim_cutoff
from certs.pipeline import MAX_LOST_CLAIMS, PIPELINE_PROBLEMS, enqueue, finish_batch

logger = logging.getLogger(__name__)


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
            enqueue(batch_id, chunked)
            enqueue(batch_id, alone, size=1)
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
        finish_batch(batch_id)
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

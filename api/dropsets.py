"""What the drop folder pages read: each folder's sets by outcome, and a folder's sets with their files' counts.

Both are counted in the database, so a page runs the same queries however many sets a folder holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from api.models import DropFolder, DropSet
from certs.models import ImportBatch, ImportItem, ItemState

_FAILING = (ItemState.FAILED, ItemState.CANCELLED)


@dataclass(frozen=True)
class SetCounts:
    imported: int = 0
    with_failures: int = 0
    refused: int = 0
    running: int = 0


def set_counts(folder_ids: Iterable[int]) -> dict[int, SetCounts]:
    """Per folder, in one query: sets imported in full, imported with failed rows, refused, running."""
    failing = Q(Exists(ImportItem.objects.filter(batch=OuterRef("batch"), state__in=_FAILING)))
    finished = Q(batch__isnull=False) & ~Q(batch__state=ImportBatch.State.RUNNING)
    rows = (
        DropSet.objects.filter(folder_id__in=list(folder_ids))
        .order_by()
        .values("folder_id")
        .annotate(
            imported=Count("pk", filter=finished & ~failing),
            with_failures=Count("pk", filter=finished & failing),
            refused=Count("pk", filter=Q(state=DropSet.State.REFUSED)),
            running=Count("pk", filter=Q(batch__state=ImportBatch.State.RUNNING)),
        )
    )
    return {
        row["folder_id"]: SetCounts(row["imported"], row["with_failures"], row["refused"], row["running"])
        for row in rows
    }


def _item_count(states: Iterable[str]) -> Coalesce:
    counted = (
        ImportItem.objects.filter(batch=OuterRef("batch"), state__in=list(states))
        .order_by()
        .values("batch")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted), 0)


def sets_of(folder: DropFolder) -> QuerySet[DropSet]:
    """The folder's sets, newest first, each with its import and its files' counts (no query per set)."""
    return (
        DropSet.objects.filter(folder=folder)
        .select_related("batch")
        .annotate(
            stored=_item_count([ItemState.STORED]),
            skipped=_item_count([ItemState.SKIPPED]),
            failed=_item_count(_FAILING),
        )
        .order_by("-found_at", "-pk")
    )

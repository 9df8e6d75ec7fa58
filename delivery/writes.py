"""Writing changed delivery rows back: what a check-in and a device report change."""

from __future__ import annotations

from collections.abc import Sequence

from delivery.models import DeliveryState
from portal.lib import lean

# Up to this many rows, one plain UPDATE each (its SQL written once, not built by the ORM): a
# check-in or report usually changes one or two, and bulk_update's CASE per field and row costs
# more to build than the round trip it saves.
FEW = 3
_FOREIGN_KEYS = frozenset(
    f.name for f in DeliveryState._meta.concrete_fields if f.is_relation and f.many_to_one
)


def rows_update(rows: Sequence[DeliveryState], fields: list[str]) -> None:
    """Write ``fields`` of ``rows`` (each row's own values)."""
    if len(rows) > FEW:
        DeliveryState.objects.bulk_update(rows, fields)
        return
    # Foreign keys by their column (job_id): reading ``row.job`` could cost a query.
    columns = [f"{name}_id" if name in _FOREIGN_KEYS else name for name in fields]
    for row in rows:
        lean.update(DeliveryState, row.pk, {c: getattr(row, c) for c in columns})

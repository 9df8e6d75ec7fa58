"""Where the evaluation reads what devices reported.

The status table lives in the ``delivery`` app, above this one (its rows name certificates,
which ``profiles`` may not import). That app registers its model here in ``AppConfig.ready()``;
the evaluation only needs rows with ``profile_id``, ``device_id`` and ``status``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import QuerySet

_SOURCE: list[type[models.Model]] = []


def register_reported_states(model: type[models.Model]) -> None:
    _SOURCE[:] = [model]


def reported(**filters: Any) -> QuerySet[Any] | None:
    """The reported states matching ``filters`` (None while nothing is registered)."""
    if not _SOURCE:
        return None
    found: QuerySet[Any] = _SOURCE[0]._default_manager.filter(**filters)
    return found


def reported_table() -> str | None:
    """The table of the reported states (None while nothing is registered), for queries written out."""
    return _SOURCE[0]._meta.db_table if _SOURCE else None


# -- Intune's side: rows with source "intune" are written by the status sync (in ``graph``, which
# registers here); the pages show when Intune was last read and its own counts per profile.


@dataclass(frozen=True)
class IntuneSide:
    last_sync: Callable[[], datetime | None]
    # A profile's overview as Intune counts it, or None when it was never read.
    profile_summary: Callable[[int], dict[str, Any] | None]


_INTUNE: list[IntuneSide] = []


def register_intune(side: IntuneSide) -> None:
    _INTUNE[:] = [side]


def intune_last_sync() -> datetime | None:
    return _INTUNE[0].last_sync() if _INTUNE else None


def intune_profile_summary(profile_id: int) -> dict[str, Any] | None:
    return _INTUNE[0].profile_summary(profile_id) if _INTUNE else None

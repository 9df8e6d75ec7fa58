"""Where a state came from, as the pages say it: this portal's check-ins, or Intune's reports read by the
status sync, with the time Intune was last read.

The status sync lives in ``graph``, above this app: it registers what it knows in its
``AppConfig.ready()``; without it (no Graph app, never synced) the pages say nothing about Intune.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class IntuneSide:
    last_sync: Callable[[], datetime | None]
    # A profile's overview as Intune counts it, or None when it was never read.
    profile_summary: Callable[[int], dict[str, Any] | None]


_registered: list[IntuneSide] = []


def register_intune(side: IntuneSide) -> None:
    _registered[:] = [side]


def intune_last_sync() -> datetime | None:
    return _registered[0].last_sync() if _registered else None


def intune_profile_summary(profile_id: int) -> dict[str, Any] | None:
    return _registered[0].profile_summary(profile_id) if _registered else None

"""Counts over whole tables (Home's tiles), computed once and reused until something changes.

Every service writes its audit event in the transaction of its change (``portal.audit``),
so the newest audit event is a clock that moves with any change: imports, deletes,
uploads, directory syncs. A kept value is reused while that clock stands still, and

- at most ``PORTAL_SUMMARY_MAX_AGE`` seconds (60) in any case, so counts by date (expiring
  within 7 days, expired) follow the calendar, and a change whose transaction commits after
  a later one's (its event has the lower id) shows then;
- at least ``PORTAL_SUMMARY_MIN_AGE`` seconds (10) even when the clock moved, so a stream of
  changes (an upload writes one event per certificate) costs one computation per interval,
  not one per view.

So a change shows within ``PORTAL_SUMMARY_MIN_AGE`` seconds, at once if nothing was computed
in that interval. Values are kept per process and per key; a key names whose view it is
(for example the scope tags an admin reads certificates through), so admins who see different
objects never share a value.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from portal.models import AuditEvent

# Keys are few (one per section and distinct scope); this bounds them anyway.
_MAX_KEPT = 512


@dataclass(frozen=True)
class _Kept:
    clock: tuple[int, str] | None
    at: float
    value: Any


_kept: dict[str, _Kept] = {}


def _now() -> float:
    return time.monotonic()


def change_clock() -> tuple[int, str] | None:
    """The newest audit event (id and code: ids repeat after a rollback, codes do not)."""
    row = AuditEvent.objects.order_by("-pk").values_list("pk", "code").first()
    return None if row is None else (row[0], str(row[1]))


def request_clock(request: object) -> tuple[int, str] | None:
    """``change_clock()`` read once per request, however many sections of a page ask for it."""
    if not hasattr(request, "_summary_clock"):
        request._summary_clock = change_clock()  # type: ignore[attr-defined]
    clock: tuple[int, str] | None = request._summary_clock  # type: ignore[attr-defined]
    return clock


def kept[T](key: str, clock: tuple[int, str] | None, compute: Callable[[], T]) -> T:
    """The value kept under ``key`` if still fresh for ``clock`` (see the module), else ``compute()``."""
    now = _now()
    found = _kept.get(key)
    if found is not None:
        age = now - found.at
        if age < settings.PORTAL_SUMMARY_MAX_AGE and (
            found.clock == clock or age < settings.PORTAL_SUMMARY_MIN_AGE
        ):
            return found.value  # type: ignore[no-any-return]
    value = compute()
    if len(_kept) >= _MAX_KEPT:
        _kept.clear()
    # Timed from before computing, with the clock read before it: never younger than it is.
    _kept[key] = _Kept(clock, now, value)
    return value


def forget() -> None:
    """Drop every kept value (tests whose data is rolled back between them)."""
    _kept.clear()

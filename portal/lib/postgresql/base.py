"""Django's PostgreSQL backend, with the health check of a kept connection skipped while it is busy.

``CONN_HEALTH_CHECKS`` runs ``SELECT 1`` before the first query of every request on a kept
connection: a round trip per request, which on a busy portal cost about as much as the one query a
kept page runs. A connection that was used less than ``CHECKED_WITHIN`` seconds ago is not
checked again; one that sat idle longer (the night a database restarts) still is, before it is
used. A query that fails on a connection that went away in between marks it (Django's
``errors_occurred``), and the connection is tested and replaced when that request ends.
"""

from __future__ import annotations

import math
import time
from typing import Any

from django.db.backends.postgresql import base

CHECKED_WITHIN = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._used_at = -math.inf

    def _cursor(self, name: str | None = None) -> Any:
        cursor = super()._cursor(name)  # type: ignore[misc]
        self._used_at = time.monotonic()
        return cursor

    def close_if_unusable_or_obsolete(self) -> None:
        super().close_if_unusable_or_obsolete()
        if self.connection is not None and time.monotonic() - self._used_at < CHECKED_WITHIN:
            self.health_check_done = True

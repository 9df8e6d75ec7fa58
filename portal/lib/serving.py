"""Serving the portal with gunicorn's threaded workers, with connections spread over the workers.

Every worker waits on the same listening socket, and a new connection wakes them all; the one
the kernel runs first accepts it. Under load that is nearly always the same worker: with 2
workers x 4 threads and 16 keep-alive clients, one worker held 15 or 16 of the connections while
the other idled, so all clients shared one core (Python runs one thread of a process at a time).
A connection stays with the worker that accepted it, so the imbalance lasts.

``BalancedThreadWorker`` lets a worker that already has a connection per thread wait a moment
before accepting, longer the more it has, so a sibling with fewer connections takes it first.
Only the arrival of a connection waits: requests on connections a worker holds are not delayed
beyond that moment. (One socket per worker, ``reuse_port``, spreads by a hash of the client's
address instead: 16 connections came out as 10/6 or 3/13.)
"""

from __future__ import annotations

import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

# How long a worker waits per connection it holds beyond one per thread, and at most.
STEP_SECONDS = 0.002
MAX_WAIT_SECONDS = 0.02


def accept_delay(connections: int, threads: int, workers: int) -> float:
    """How long a worker holding ``connections`` waits before accepting another."""
    if workers < 2:
        return 0.0
    surplus = connections - threads + 1
    return 0.0 if surplus <= 0 else min(surplus * STEP_SECONDS, MAX_WAIT_SECONDS)


class BalancedThreadWorker(ThreadWorker):
    """gunicorn's threaded worker, leaving new connections to less loaded siblings for a moment."""

    def accept(self, listener: Any) -> None:
        delay = accept_delay(self.nr_conns, self.cfg.threads, self.cfg.workers)
        if delay:
            time.sleep(delay)
        # The listener is non-blocking: when a sibling took the connection meanwhile, this finds
        # none and gunicorn goes back to waiting.
        super().accept(listener)


def balance_threads(server: Any) -> None:
    """For gunicorn's ``on_starting`` hook: serve with ``BalancedThreadWorker`` when running threads."""
    if server.worker_class is ThreadWorker:
        server.worker_class = BalancedThreadWorker

"""The command line of a Celery worker process, as the tests and benchmarks start them."""

from __future__ import annotations

import sys
import uuid


def celery_worker_argv(name: str, *, concurrency: int = 2) -> list[str]:
    """A prefork worker named ``name-<random>@host``; gossip and mingle off, so it starts at once."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "portal",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "WARNING",
        "-n",
        f"{name}-{uuid.uuid4().hex[:8]}@%h",
        "--without-gossip",
        "--without-mingle",
    ]

"""Import rows held by a Celery worker that is killed (kill -9) are recovered, each exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from certs import imports, sweeps
from certs.models import Certificate, ImportBatch, ImportItem, ItemState
from certs.tests.conftest import make_pair, with_cryptography
from certs.tests.importing import add_key, directory_user
from conftest import _database_url, wait_for
from portal.audit import Actor
from portal.lib.workers import celery_worker_argv
from portal.models import AuditEvent, ScopeTag

pytestmark = [pytest.mark.worker]

ROWS = 50
LEASE_SECONDS = 5
# Enough key-derivation rounds that the chunk takes a few seconds (about 60 ms a file), so the
# kill lands while the worker holds the rows; well inside the lease, so the worker that
# recovers the rows is never itself overtaken.
ROUNDS = 200_000


class _Worker:
    """A worker in its own process group, so a test can kill it and its pool children at once."""

    def __init__(self, broker_folder: Path | None, *, concurrency: int) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
            "CERTS_CLAIM_LEASE_SECONDS": str(LEASE_SECONDS),
        }
        if broker_folder is not None:
            env["CELERY_BROKER_FOLDER"] = str(broker_folder)
        argv = celery_worker_argv("recover", concurrency=concurrency)
        self.proc = subprocess.Popen(argv, cwd=settings.BASE_DIR, env=env, start_new_session=True)

    def pool_children(self) -> list[int]:
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == self.proc.pid:
                children.append(int(stat.parent.name))
        return children

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=20)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGQUIT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def start_worker(
    transactional_db: None, broker_folder: Path | None, settings: Any
) -> Iterator[Callable[..., _Worker]]:
    from portal.celery import app

    settings.CERTS_CLAIM_LEASE_SECONDS = LEASE_SECONDS
    if broker_folder is None:
        app.control.purge()  # a shared broker may hold messages of earlier runs
    workers: list[_Worker] = []

    def start(concurrency: int = 2) -> _Worker:
        workers.append(_Worker(broker_folder, concurrency=concurrency))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


def _entries() -> list[imports.Entry]:
    entries = []
    for i in range(ROWS):
        upn = f"recover-{i:03d}@contoso.example"
        directory_user(upn)
        pair = make_pair(f"ec-recover-{i}", email=upn, upn=upn, cn=upn)
        data = with_cryptography(pair, f"Recover-{i}", rounds=ROUNDS)
        entries.append(imports.Entry(f"{upn}.pfx", data, f"Recover-{i}", upn))
    return entries


def _held(batch: ImportBatch) -> int:
    return ImportItem.objects.filter(batch=batch, claim__isnull=False, done=False).count()


@pytest.mark.parametrize("victim", ["whole worker", "pool child"])
def test_rows_held_by_a_killed_worker_are_each_stored_exactly_once(
    start_worker: Callable[..., _Worker], victim: str
) -> None:
    entries = _entries()
    key = add_key()
    first = start_worker(concurrency=1)
    batch = imports.batch_create(
        Actor.system(), kind=ImportBatch.Kind.BULK, key=key, entries=entries, tags=[ScopeTag.default()]
    )
    wait_for(lambda: _held(batch), timeout=60, interval=0.05)
    if victim == "whole worker":
        first.kill()
        start_worker()
    else:
        # The pool replaces its child and the broker hands the task out again (acks_late,
        # reject_on_worker_lost): that copy finds the rows under a live claim and leaves them.
        (child,) = first.pool_children()
        os.kill(child, signal.SIGKILL)
    stranded = _held(batch)
    assert stranded > 0, "the worker finished the chunk before it was killed"
    claimed_at = ImportItem.objects.filter(batch=batch).aggregate(Max("claimed_at"))["claimed_at__max"]
    assert claimed_at is not None

    # What beat does once a minute, run here once the dead worker's lease has ended.
    wait_for(lambda: timezone.now() > claimed_at + timedelta(seconds=LEASE_SECONDS), timeout=60)
    sweeps.sweep_stalled_items()

    wait_for(lambda: not ImportItem.objects.filter(batch=batch, done=False).exists(), timeout=120)
    items = list(ImportItem.objects.filter(batch=batch))
    assert {item.state for item in items} == {ItemState.STORED}
    assert [item.attempts for item in items] == [1] * ROWS  # each row's result written once
    assert all(item.staged_password is None and item.claim is None for item in items)
    certificates = Certificate.objects.filter(batch=batch)
    assert certificates.count() == ROWS
    assert len({item.certificate_id for item in items}) == ROWS
    audited = AuditEvent.objects.filter(activity="Import certificates", correlation_id=batch.code)
    assert sum(len(event.resources) for event in audited) == ROWS
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.DONE

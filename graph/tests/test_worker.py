"""Uploads through real Celery worker processes talking to the emulator over HTTPS."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
from django.utils import timezone

from certs.models import Certificate, GraphState
from conftest import wait_for
from devtools.emulator.server import Emulator
from graph import uploads
from graph.models import TenantConnection, UploadRecord
from graph.tests.conftest import Worker

pytestmark = [pytest.mark.worker]


def _synced(ids: list[int]) -> bool:
    return Certificate.objects.filter(pk__in=ids, graph_state=GraphState.SYNCED).count() == len(ids)


def test_a_throttled_burst_is_uploaded_completely_without_duplicates(
    celery_worker: subprocess.Popen[bytes],
    emulator: Emulator,
    connected: TenantConnection,
    make_certificate: Callable[..., Certificate],
) -> None:
    # The service allows far fewer writes than the portal's budget expects: 429s must be absorbed.
    emulator.config.write_limit, emulator.config.write_window = 1, 1.0
    upns = [u["userPrincipalName"] for u in list(emulator.state.users.values())[:16]]
    certificates = [make_certificate(upn) for upn in upns]
    uploads.queue_uploads([c.pk for c in certificates])
    wait_for(lambda: _synced([c.pk for c in certificates]), timeout=120)
    assert emulator.state.stats.throttled > 0
    assert emulator.state.stats.creates == len(certificates) == len(emulator.state.pfx)
    assert emulator.state.stats.conflicts == 0


def test_a_worker_killed_mid_upload_loses_nothing_and_duplicates_nothing(
    start_worker: Callable[[], Worker],
    emulator: Emulator,
    connected: TenantConnection,
    make_certificate: Callable[..., Certificate],
) -> None:
    # Each new record is stored a while before the answer: the kill lands after Intune has it
    # and before the worker could record that.
    emulator.config.create_answer_delay = 1.0
    upns = [u["userPrincipalName"] for u in list(emulator.state.users.values())[:12]]
    ids = [make_certificate(upn).pk for upn in upns]
    first = start_worker()
    uploads.queue_uploads(ids)
    wait_for(
        lambda: (
            emulator.state.stats.creates >= 1 and UploadRecord.objects.filter(claim__isnull=False).exists()
        )
    )
    first.kill()
    killed_at = timezone.now()
    stranded = set(UploadRecord.objects.filter(claim__isnull=False).values_list("graph_id", flat=True))
    emulator.config.create_answer_delay = 0.0
    start_worker()
    # The schedule does this once claims time out; here everything the dead worker held is stale already.
    uploads.sweep(claimed_before=killed_at, queued_before=killed_at)
    wait_for(lambda: _synced(ids), timeout=120)
    assert stranded & set(emulator.state.pfx)  # Intune had a record the portal had not marked
    assert len(emulator.state.pfx) == len(ids)
    assert emulator.state.stats.creates == len(ids)
    assert emulator.state.stats.conflicts == 0

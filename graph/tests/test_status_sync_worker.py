"""A status sync whose worker is killed part way is closed as failed, and the next one reads everything once."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from certs.models import Certificate
from conftest import wait_for
from delivery.models import DeliveryState, Source
from devtools.emulator.server import Emulator
from graph import status_sync
from graph.models import StatusSyncRun, TenantConnection
from graph.tests.conftest import Worker
from graph.tests.test_status_sync import _cert_state, _devices, _profile_in_intune, _report, _status
from portal.audit import Actor
from portal.lib.runs import STALLED

pytestmark = [pytest.mark.worker]


def test_a_sync_whose_worker_was_killed_is_closed_and_the_next_one_writes_every_row_once(
    start_worker: Callable[[], Worker],
    emulator: Emulator,
    connected: TenantConnection,
    portal_graph: Any,
    make_certificate: Callable[..., Certificate],
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    certificate = make_certificate()
    user = certificate.user
    assert user is not None
    _profile, config_id = _profile_in_intune(portal_graph)
    devices = _devices(emulator, user, 12)
    _report(
        emulator,
        {
            "configurationId": config_id,
            "deviceStatuses": [_status(m, config_id, str(user.object_id), "compliant") for _d, m in devices],
            "certificateStates": [
                _cert_state(m, config_id, certificate.thumbprint, "installed") for _d, m in devices
            ],
        },
    )
    # Two reads a second: the run lasts long enough to be killed in the middle of it.
    monkeypatch.setenv("GRAPH_STATUS_READ_LIMIT", "2")
    monkeypatch.setenv("GRAPH_STATUS_READ_WINDOW_SECONDS", "1")
    first = start_worker()
    before = emulator.state.stats.reads
    status_sync.start(Actor.system("test"))
    wait_for(lambda: emulator.state.stats.reads >= before + 4, timeout=60)
    first.kill()
    stalled = StatusSyncRun.objects.get()
    assert stalled.state == StatusSyncRun.State.RUNNING

    start_worker()
    settings.GRAPH_STATUS_SYNC_TIMEOUT_SECONDS = 1  # the documented bound, shortened for the test
    time.sleep(1.1)
    run, started = status_sync.start(Actor.system("test"))
    assert started and run.pk != stalled.pk
    stalled.refresh_from_db()
    assert stalled.state == StatusSyncRun.State.FAILED and stalled.error == STALLED
    wait_for(lambda: StatusSyncRun.objects.filter(pk=run.pk).exclude(state="running").exists(), timeout=120)
    run.refresh_from_db()
    assert run.state == StatusSyncRun.State.DONE, run.error
    rows = DeliveryState.objects.filter(source=Source.INTUNE)
    assert rows.count() == 24
    assert rows.filter(certificate=certificate).count() == 12

from __future__ import annotations

import os
import subprocess

import pytest
from django.core.cache import cache

from conftest import wait_for
from portal.tasks import HEARTBEAT_KEY, heartbeat


@pytest.mark.worker
def test_background_work_runs_in_a_separate_worker_process(celery_worker: subprocess.Popen[bytes]) -> None:
    cache.delete(HEARTBEAT_KEY)

    heartbeat.delay()

    beat = wait_for(lambda: cache.get(HEARTBEAT_KEY))
    assert isinstance(beat, dict)
    assert beat["pid"] != os.getpid()

"""Profiles sent to Intune by real Celery worker processes, one of them killed mid-write."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.utils import timezone

from conftest import wait_for
from devtools.emulator.server import Emulator
from directory.models import Platform
from graph import uploads
from graph.models import ProfileRecord, TenantConnection
from graph.tests.conftest import Worker
from portal.audit import Actor
from profiles import services
from profiles.services import ProfileDraft

pytestmark = [pytest.mark.worker]


def _all_in_intune(count: int) -> bool:
    return ProfileRecord.objects.filter(state=ProfileRecord.State.SYNCED).count() == count


def test_a_worker_killed_mid_profile_write_loses_nothing_and_creates_nothing_twice(
    start_worker: Callable[[], Worker], emulator: Emulator, connected: TenantConnection
) -> None:
    # Each new configuration is stored a while before the answer: the kill lands in between.
    emulator.config.create_answer_delay = 1.0
    first = start_worker()
    for n in range(6):
        services.profile_create(
            actor=Actor.system("test"),
            draft=ProfileDraft(
                platform=Platform.IOS,
                name=f"iOS mail {n}",
                intended_purpose="smimeEncryption",
                all_users=True,
            ),
        )
    wait_for(
        lambda: (
            emulator.state.stats.profile_creates >= 1
            and ProfileRecord.objects.filter(claim__isnull=False).exists()
        )
    )
    first.kill()
    killed_at = timezone.now()
    emulator.config.create_answer_delay = 0.0
    start_worker()
    uploads.sweep(claimed_before=killed_at, queued_before=killed_at)
    wait_for(lambda: _all_in_intune(6), timeout=120)
    assert len(emulator.state.configurations) == 6
    assert emulator.state.stats.profile_creates == 6
    assert sorted(c["displayName"] for c in emulator.state.configurations.values()) == [
        f"iOS mail {n}" for n in range(6)
    ]

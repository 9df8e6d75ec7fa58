"""``manage.py simulate_devices``: a fleet on all six platforms enrols and checks in over real HTTP."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from delivery.models import DeviceCredential
from devtools import devices
from directory.models import Device, DirectoryUser, Platform

pytestmark = pytest.mark.django_db(transaction=True)


def _fleet() -> None:
    for i, platform in enumerate(Platform.values * 2):
        user = DirectoryUser.objects.create(upn=f"user{i}@contoso.example", display_name=f"User {i}")
        Device.objects.create(name=f"DEV-{i:02d}", platform=platform, primary_user=user)
    Device.objects.create(name="KIOSK", platform=Platform.WINDOWS)  # no primary user: never picked


def test_the_picked_devices_take_the_six_platforms_in_turn(db: None) -> None:
    _fleet()
    picked = devices.pick(6)
    assert sorted(d.platform for d in picked) == sorted(Platform.values)


def test_simulated_devices_enrol_on_every_platform_and_check_in(
    live_server: Any, settings: Any, tmp_path: Any
) -> None:
    settings.DATA_DIR = tmp_path
    _fleet()
    out = StringIO()
    call_command(
        "simulate_devices", count=6, interval=0.5, duration=2, server=str(live_server), fresh=True, stdout=out
    )
    live = DeviceCredential.objects.filter(revoked_at=None)
    assert sorted(live.values_list("device__platform", flat=True)) == sorted(Platform.values)
    assert all(c.last_check_in is not None for c in live)
    assert "6 simulated devices enrolled" in out.getvalue()
    assert "errors 0" in out.getvalue()


def test_a_restarted_fleet_keeps_its_enrolments(live_server: Any, settings: Any, tmp_path: Any) -> None:
    settings.DATA_DIR = tmp_path
    _fleet()
    for _ in range(2):
        call_command(
            "simulate_devices", count=3, interval=0.5, duration=1, server=str(live_server), stdout=StringIO()
        )
    assert DeviceCredential.objects.count() == 3

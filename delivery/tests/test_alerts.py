"""Install-failure alerts: one per crossing of the threshold, either way, claimed once."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from delivery import alerts
from delivery.models import DeliveryState, FailureAlert
from delivery.tests import builders as b
from profiles.models import DeliveryStatus
from profiles.tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def failing(settings: Any) -> Any:
    settings.DELIVERY_ALERT_FAILED_DEVICES = 2
    settings.CONNECTOR_ALERT_EMAILS = ["pki-team@contoso.example"]
    settings.CONNECTOR_ALERT_WEBHOOK = ""
    alice = f.user("alice@contoso.example")
    smime = b.profile("S/MIME encryption")
    cert = b.certificate(alice)

    def fail(name: str) -> DeliveryState:
        return b.state(smime, f.device(name, alice), cert, DeliveryStatus.ERROR, code="pfx_open_failed")

    return fail


def test_crossing_the_threshold_alerts_once_however_many_sweeps_see_it(failing: Any) -> None:
    failing("LAPTOP-1")
    assert alerts.failure_sweep() == 0  # one device: under the threshold

    failing("LAPTOP-2")
    assert alerts.failure_sweep() == 1
    assert alerts.failure_sweep() == 0
    failing("LAPTOP-3")  # still over: no new crossing
    assert alerts.failure_sweep() == 0

    assert alerts.alerts_send() == 1
    assert alerts.alerts_send() == 0
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["pki-team@contoso.example"]
    assert "S/MIME encryption: 2 devices failing" in mail.outbox[0].subject


def test_going_back_under_the_threshold_alerts_once_more(failing: Any) -> None:
    rows = [failing("LAPTOP-1"), failing("LAPTOP-2")]
    alerts.failure_sweep()
    DeliveryState.objects.filter(pk=rows[0].pk).update(status=DeliveryStatus.SUCCEEDED)

    assert alerts.failure_sweep() == 1
    assert alerts.failure_sweep() == 0
    assert [a.over for a in FailureAlert.objects.order_by("pk")] == [True, False]
    alerts.alerts_send()
    assert "back under 2" in mail.outbox[-1].subject


def test_a_zero_threshold_never_alerts(failing: Any, settings: Any) -> None:
    settings.DELIVERY_ALERT_FAILED_DEVICES = 0
    failing("LAPTOP-1")
    failing("LAPTOP-2")

    assert alerts.failure_sweep() == 0
    assert not FailureAlert.objects.exists()

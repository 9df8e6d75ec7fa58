from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import wait_for
from connectors import enrolment
from connectors.models import Connector, Status, StatusChange
from connectors.tasks import health_sweep

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_the_beat_task_records_a_silent_connector_as_error_and_alerts_once(celery_worker, token_for):
    connector, _ = enrolment.connector_enroll(
        token=token_for("A"), host_name="a", version="1.2.0", features=[]
    )
    Connector.objects.filter(pk=connector.pk).update(
        last_seen=timezone.now() - timedelta(hours=1), recorded_status=Status.HEALTHY
    )
    health_sweep.delay()
    change = wait_for(
        lambda: StatusChange.objects.filter(new_status=Status.ERROR, alerted_at__isnull=False).first()
    )
    health_sweep.delay()
    health_sweep.delay()
    wait_for(lambda: Connector.objects.get(pk=connector.pk).recorded_status == Status.ERROR)
    assert StatusChange.objects.filter(connector=connector).count() == 1
    assert change is not None

"""The demo's bulk import: real files through the real pipeline, and only once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from certs import imports, pipeline
from certs.models import Certificate, ImportBatch, Purpose
from certs.tests.importing import add_key
from devtools.certificates import seed_demo_certificates
from devtools.tenant import seed

pytestmark = pytest.mark.django_db


def test_the_demo_import_stores_a_realistic_mix_and_runs_only_once() -> None:
    seed()
    batch = seed_demo_certificates(add_key())
    assert batch is not None
    ids = list(batch.items.order_by("position").values_list("pk", flat=True))
    pipeline.process_chunk(batch.pk, ids)  # what a worker does with the batch's one chunk

    counts = imports.batch_counts(batch)
    assert counts["stored"] == batch.total - 2 and counts["failed"] == 2
    assert set(batch.items.filter(state="failed").values_list("problem_code", flat=True)) == {
        "wrong_password",
        "expired",
    }
    week = timezone.now() + dt.timedelta(days=7)
    assert Certificate.objects.filter(not_after__lte=week).count() >= 2
    assert Certificate.objects.filter(purpose=Purpose.SMIME_SIGNING).exists()
    # Users with a previous encryption certificate keep it beside the new one.
    previous = batch.items.filter(filename__contains="-previous", state="stored").first()
    assert previous is not None and previous.certificate is not None
    kept = Certificate.objects.filter(user=previous.certificate.user, purpose=Purpose.SMIME_ENCRYPTION)
    assert kept.count() == 2
    assert seed_demo_certificates(batch.encryption_key) is None
    assert ImportBatch.objects.count() == 1

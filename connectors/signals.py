"""Signals connectors send for the apps above them (delivery listens)."""

from __future__ import annotations

from django.dispatch import Signal

# Device re-encryption jobs that failed for good; ``job_ids``: their primary keys. Sent on commit.
device_jobs_failed = Signal()

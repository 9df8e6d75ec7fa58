"""Celery tasks of the import pipeline and the expiry reminders. Thin: ids in, a service call out."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from certs import pipeline, reports, sweeps


@shared_task(
    ignore_result=True,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=240,
    time_limit=300,
)
def process_chunk_task(batch_id: int, item_ids: list[int]) -> None:
    """Process one chunk of an import batch; safe to run twice (rows are claimed first).

    The time limits stay below ``CERTS_CLAIM_LEASE_SECONDS`` (420 s by default): a chunk still
    running is never taken over, and one whose worker died is taken over once its lease ends.
    """
    pipeline.process_chunk(batch_id, item_ids)


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def sweep_stalled_imports_task() -> int:
    """Every minute: rows held by a dead worker (lease ended) or whose task was lost are queued again."""
    return sweeps.sweep_stalled_items()


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def purge_retry_files_task() -> int:
    """Hourly: files kept for a retry are deleted once their import's retry window has ended."""
    return sweeps.purge_retry_files()


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def send_expiry_reminders_task() -> None:
    """Daily: reminders 30, 14, 7 and 1 days before a certificate expires, each sent once."""
    reports.send_expiry_reminders()


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def expire_dry_runs_task() -> None:
    """Hourly: dry runs past their keeping time lose their files and staged passwords."""
    sweeps.expire_dry_runs()

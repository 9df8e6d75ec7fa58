"""Thin Celery tasks: each takes ids and calls a service."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from graph import directory_sync, intune_connectors, key_resend, profile_sync, status_sync, uploads
from graph import reconcile as reconcile_service
from graph.models import TenantConnection
from graph.uploads import RetryLater

# Throttling and outages pass; the services count attempts and give up on their own.


@shared_task(
    autoretry_for=(RetryLater,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=50,
    ignore_result=True,
)
def upload_certificate(record_id: int) -> str:
    return uploads.upload(record_id)


@shared_task(
    autoretry_for=(RetryLater,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=50,
    ignore_result=True,
)
def delete_from_intune(record_id: int) -> str:
    return uploads.delete(record_id)


@shared_task(
    autoretry_for=(profile_sync.RetryLater,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=50,
    ignore_result=True,
)
def push_profile(record_id: int) -> str:
    return profile_sync.push(record_id)


@shared_task(
    autoretry_for=(profile_sync.RetryLater,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=50,
    ignore_result=True,
)
def delete_profile(record_id: int) -> str:
    return profile_sync.delete(record_id)


@shared_task(
    autoretry_for=(RetryLater,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=50,
    ignore_result=True,
)
def resend_password(record_id: int) -> str:
    return key_resend.resend(record_id)


@shared_task(ignore_result=True)
def sweep_stalled() -> int:
    return uploads.sweep()


@shared_task(ignore_result=True)
def reconcile(run_id: int | None = None) -> int | None:
    if run_id is None and TenantConnection.current() is None:
        return None  # Scheduled, but nothing is connected yet.
    return reconcile_service.run(run_id).pk


@shared_task(ignore_result=True)
def sync_directory(run_id: int | None = None) -> int | None:
    if run_id is None and TenantConnection.current() is None:
        return None
    return directory_sync.run(run_id).pk


@shared_task(ignore_result=True, soft_time_limit=120)
def refresh_intune_connectors() -> int:
    return intune_connectors.refresh()


# The hard limit is the stall timeout: a run older than that has no live worker, and is closed.
@shared_task(
    ignore_result=True,
    soft_time_limit=settings.GRAPH_STATUS_SYNC_TIMEOUT_SECONDS - 30,
    time_limit=settings.GRAPH_STATUS_SYNC_TIMEOUT_SECONDS,
)
def sync_intune_status(run_id: int | None = None) -> int | None:
    if run_id is None and TenantConnection.current() is None:
        return None
    return status_sync.run(run_id).pk

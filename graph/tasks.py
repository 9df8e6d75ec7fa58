"""Thin Celery tasks: each takes ids and calls a service."""

from __future__ import annotations

from collections.abc import Callable

from celery import Task, shared_task
from django.conf import settings
from django.db.models import Model

from graph import directory_sync, intune_connectors, key_resend, profile_sync, status_sync, uploads
from graph import reconcile as reconcile_service
from graph.models import TenantConnection


def _claim_and_send(
    retry_on: type[Exception],
) -> Callable[[Callable[[int], str]], Task[[int], str]]:
    """The decorator of a task that claims one record and sends it to Graph.

    Throttling and outages pass; the services count attempts and give up on their own.
    """
    return shared_task(
        autoretry_for=(retry_on,),
        retry_backoff=5,
        retry_backoff_max=300,
        retry_jitter=True,
        max_retries=50,
        ignore_result=True,
    )


def _run_when_connected(run: Callable[[int | None], Model], run_id: int | None) -> int | None:
    if run_id is None and TenantConnection.current() is None:
        return None  # Scheduled, but nothing is connected yet.
    return int(run(run_id).pk)


@_claim_and_send(uploads.RetryLater)
def upload_certificate(record_id: int) -> str:
    return uploads.upload(record_id)


@_claim_and_send(uploads.RetryLater)
def delete_from_intune(record_id: int) -> str:
    return uploads.delete(record_id)


@_claim_and_send(profile_sync.RetryLater)
def push_profile(record_id: int) -> str:
    return profile_sync.push(record_id)


@_claim_and_send(profile_sync.RetryLater)
def delete_profile(record_id: int) -> str:
    return profile_sync.delete(record_id)


@_claim_and_send(uploads.RetryLater)
def resend_password(record_id: int) -> str:
    return key_resend.resend(record_id)


@shared_task(ignore_result=True)
def sweep_stalled() -> int:
    return uploads.sweep()


@shared_task(ignore_result=True)
def reconcile(run_id: int | None = None) -> int | None:
    return _run_when_connected(reconcile_service.run, run_id)


@shared_task(ignore_result=True)
def sync_directory(run_id: int | None = None) -> int | None:
    return _run_when_connected(directory_sync.run, run_id)


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
    return _run_when_connected(status_sync.run, run_id)

"""Celery tasks of the API app. Thin: a service call out."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from api import dropfolder

# A scan reads folders and starts imports: retried when the database is briefly away, cut off if stuck.
_SCAN: dict[str, Any] = {
    "ignore_result": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "max_retries": 3,
    "soft_time_limit": 240,
    "time_limit": 300,
}


@shared_task(**_SCAN)
def scan_drop_folders() -> int:
    """Every minute: import each complete set of the drop folders once; write the results of finished ones.

    Safe to run on several workers at once (see ``api.dropfolder``).
    """
    return dropfolder.scan_all()


@shared_task(**_SCAN)
def scan_drop_folder(folder_id: int) -> int:
    """Scan one drop folder now (its page's Scan now): the same scan beat runs every minute."""
    return dropfolder.scan_one(folder_id)

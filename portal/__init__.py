from __future__ import annotations

# Load the Celery app with Django so that `delay_on_commit` finds its broker settings.
from portal.celery import app as celery_app

__all__ = ["celery_app"]

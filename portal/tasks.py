from __future__ import annotations

import os
import socket
import time

from celery import shared_task
from django.core.cache import cache

HEARTBEAT_KEY = "portal:worker-heartbeat"


@shared_task(ignore_result=True)
def heartbeat() -> None:
    cache.set(
        HEARTBEAT_KEY, {"at": time.time(), "host": socket.gethostname(), "pid": os.getpid()}, timeout=3600
    )

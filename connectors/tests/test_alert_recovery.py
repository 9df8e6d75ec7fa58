"""An alert claimed by a process killed (kill -9) before it was sent goes out once after the claim lapses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core import mail

from conftest import _database_url, wait_for
from connectors import alerts
from connectors.models import Connector, Status, StatusChange

pytestmark = [pytest.mark.django_db(transaction=True)]

CLAIM_TIMEOUT = 2


@pytest.fixture
def silent_webhook() -> Iterator[str]:
    """A webhook that takes the connection and never answers: the sender hangs there."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def _sender(webhook: str) -> subprocess.Popen[bytes]:
    script = textwrap.dedent(
        """
        import django
        django.setup()
        from connectors import alerts
        alerts.alerts_send()
        """
    )
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CONNECTOR_ALERT_WEBHOOK": webhook,
        "CONNECTOR_ALERT_EMAILS": "pki-team@contoso.example",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "PORTAL_ALERT_CLAIM_TIMEOUT_SECONDS": str(CLAIM_TIMEOUT),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    return subprocess.Popen(
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, start_new_session=True
    )


def test_an_alert_claimed_by_a_killed_sender_is_sent_once_after_the_claim_lapses(
    silent_webhook: str, settings: Any
) -> None:
    connector = Connector.objects.create(name="PKI-CONN-01", host_name="pki01.contoso.example")
    change = StatusChange.objects.create(
        connector=connector, old_status=Status.HEALTHY, new_status=Status.ERROR, reason="No heartbeat."
    )
    sender = _sender(silent_webhook)
    try:
        wait_for(lambda: StatusChange.objects.get(pk=change.pk).alert_claimed_at is not None, timeout=60)
    finally:
        os.killpg(sender.pid, signal.SIGKILL)
        sender.wait(timeout=20)
    claimed = StatusChange.objects.get(pk=change.pk)
    assert claimed.alerted_at is None  # killed while sending

    settings.PORTAL_ALERT_CLAIM_TIMEOUT_SECONDS = CLAIM_TIMEOUT
    settings.CONNECTOR_ALERT_WEBHOOK = ""
    settings.CONNECTOR_ALERT_EMAILS = ["pki-team@contoso.example"]
    # Within the lease the claim holds: nobody sends it.
    assert alerts.alerts_send() == 0
    time.sleep(CLAIM_TIMEOUT + 0.5)
    assert alerts.alerts_send() == 1
    assert alerts.alerts_send() == 0
    sent = StatusChange.objects.get(pk=change.pk)
    assert sent.alerted_at is not None and sent.alert_result == "mailed 1"
    assert [m.subject.endswith("Connector PKI-CONN-01 is error") for m in mail.outbox] == [True]

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.worker
def test_the_demo_command_serves_the_portal_with_a_worker_and_beat_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env |= {"PORTAL_DATA_DIR": str(tmp_path), "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    env["GRAPH_EMULATOR_PORT"] = str(free_port())
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "manage.py", "demo"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 90
            health = None
            while health is None:
                assert demo.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                        health = json.load(response)
                except OSError:
                    time.sleep(0.5)
            assert health["status"] == "ok"
            while "Press Ctrl+C to stop." not in log.read_text():
                assert demo.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
            text = log.read_text()
            assert f"PFX Portal is running at http://127.0.0.1:{port}/" in text
            assert "admin@contoso.com" in text and "helpdesk@contoso.com" in text
            assert "worker (pid" in text and "beat (pid" in text and "connector (pid" in text
            assert "graph-emulator (pid" in text and "devices (pid" in text
            assert "Demo tenant connected to the Microsoft Graph emulator" in text
            assert "Demo bulk import of 66 certificates started with key" in text
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(timeout=60)
    assert demo.returncode == 0, log.read_text()
    text = log.read_text()
    assert "Demo stopped." in text
    # Quiet by default: no per-request or per-task INFO lines, no broker warnings, and stopping
    # the worker reports nothing as an error.
    assert " INFO " not in text, text
    assert "No hostname was supplied" not in text, text
    assert "ERROR" not in text, text

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from graph.models import TenantConnection


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.django_db
def test_the_emulator_command_serves_and_the_demo_connects_to_it(tmp_path: Path) -> None:
    port = _free_port()
    argv = [sys.executable, "manage.py", "graph_emulator", "--port", str(port), "--tls-dir", str(tmp_path)]
    emulator = subprocess.Popen(argv, cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL)
    try:
        call_command(
            "graph_connect_demo", url=f"https://127.0.0.1:{port}", ca_file=str(tmp_path / "ca.pem"), wait=60
        )
        connection = TenantConnection.objects.get()
        assert connection.test_ok is True
        assert connection.graph_url == f"https://127.0.0.1:{port}"
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)

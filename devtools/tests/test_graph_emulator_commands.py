from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from conftest import wait_for
from graph import connection
from graph.models import TenantConnection
from portal.audit import Actor


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(port: int, tls_dir: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "manage.py", "graph_emulator", "--port", str(port), "--tls-dir", str(tls_dir)]
    return subprocess.Popen(argv, cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL)


@pytest.mark.django_db
def test_the_emulator_command_serves_and_the_demo_connects_to_it(tmp_path: Path) -> None:
    port = _free_port()
    emulator = _serve(port, tmp_path)
    try:
        call_command(
            "graph_connect_demo", url=f"https://127.0.0.1:{port}", ca_file=str(tmp_path / "ca.pem"), wait=60
        )
        stored = TenantConnection.objects.get()
        assert stored.test_ok is True
        assert stored.graph_url == f"https://127.0.0.1:{port}"
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


@pytest.mark.django_db
def test_a_restarted_emulator_keeps_its_ca_so_the_stored_connection_still_works(tmp_path: Path) -> None:
    port = _free_port()
    emulator = _serve(port, tmp_path)
    try:
        call_command(
            "graph_connect_demo", url=f"https://127.0.0.1:{port}", ca_file=str(tmp_path / "ca.pem"), wait=60
        )
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    first_ca = (tmp_path / "ca.pem").read_text()
    emulator = _serve(port, tmp_path)
    try:
        wait_for(lambda: _answers(port))
        connection.forget_clients()
        assert connection.test_connection(Actor.system("test")).test_ok is True
        assert (tmp_path / "ca.pem").read_text() == first_ca
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False

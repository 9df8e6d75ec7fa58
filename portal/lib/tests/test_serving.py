from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings

from conftest import wait_for
from portal.lib.serving import MAX_WAIT_SECONDS, accept_delay


def test_a_worker_with_a_free_thread_accepts_a_connection_at_once() -> None:
    assert accept_delay(connections=0, threads=4, workers=2) == 0
    assert accept_delay(connections=3, threads=4, workers=2) == 0


def test_a_worker_holding_a_connection_per_thread_waits_longer_the_more_it_holds() -> None:
    delays = [accept_delay(connections=n, threads=4, workers=2) for n in range(4, 40)]
    assert 0 < delays[0] < delays[1] < delays[2]
    assert delays == sorted(delays) and max(delays) == MAX_WAIT_SECONDS


def test_a_single_worker_never_waits() -> None:
    assert accept_delay(connections=100, threads=4, workers=1) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sockets(port: int, state: str) -> set[str]:
    """The inodes of the sockets on local ``port`` in ``state`` ("01" established, "0A" listening)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == state:
                inodes.add(fields[9])
    return inodes


def _waiting_for_connections(pid: int, port: int) -> bool:
    """Whether the worker ``pid`` has its listening socket in its poller (it has loaded the portal)."""
    listening = _sockets(port, "0A")
    fds = _links(Path(f"/proc/{pid}"))
    listener = {fd for fd, link in fds.items() if link.startswith("socket:[") and link[8:-1] in listening}
    for fd, link in fds.items():
        if link == "anon_inode:[eventpoll]":
            polled = {
                line.split()[1]
                for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines()
                if line.startswith("tfd:")
            }
            if listener & polled:
                return True
    return False


def _links(proc: Path) -> dict[str, str]:
    """What each open file of a process is (files opened or closed meanwhile are left out)."""
    found: dict[str, str] = {}
    try:
        fds = list((proc / "fd").iterdir())
    except OSError:
        return found
    for fd in fds:
        try:
            found[fd.name] = str(fd.readlink())
        except OSError:
            continue
    return found


def _connections_by_process(port: int) -> Counter[int]:
    """Established connections on ``port`` per process holding them (Linux's /proc)."""
    inodes = _sockets(port, "01")
    found: Counter[int] = Counter()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        links = list(_links(proc).values())
        found[int(proc.name)] += sum(
            link[len("socket:[") : -1] in inodes for link in links if link.startswith("socket:[")
        )
    return +found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="counts connections through Linux's /proc")
def test_keep_alive_connections_arriving_at_once_are_spread_over_the_workers(tmp_path: Path) -> None:
    port = _free_port()
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    with (tmp_path / "web.log").open("ab") as out:
        web = subprocess.Popen(
            [
                gunicorn,
                "portal.wsgi",
                "--workers=2",
                "--threads=2",
                "--keep-alive=120",
                f"--bind=127.0.0.1:{port}",
            ],
            cwd=settings.BASE_DIR,
            env={**os.environ, "ALLOWED_HOSTS": "127.0.0.1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    clients: list[socket.socket] = []
    try:
        wait_for(lambda: _answers(port), timeout=60)
        wait_for(lambda: len(_workers(web.pid)) == 2, timeout=30)
        for pid in _workers(web.pid):
            wait_for(lambda: _waiting_for_connections(pid, port), timeout=60)  # noqa: B023
        # Signed out, "/" answers with a redirect to the sign-in page and touches no database.
        request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(12)]
        for client in clients:
            client.sendall(request)
        for client in clients:
            assert client.recv(65536).startswith(b"HTTP/1.1 302")
        held = _connections_by_process(port)
        workers = _workers(web.pid)
        # Every connection is held by a worker, and neither holds most of them.
        assert sum(held[pid] for pid in workers) == len(clients)
        # Taken as they come, one worker holds 10 or 11 of the 12; spread, 5 to 7.
        assert max(held[pid] for pid in workers) <= 8, held
    finally:
        for client in clients:
            client.close()
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)


def _workers(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        time.sleep(0.2)
        return False

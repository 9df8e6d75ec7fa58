"""What the benchmarks that drive a real web server share: starting it, a free port, waiting for
it to answer, the CPU its processes used, percentiles, and the /healthz baseline load."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

SERVERS = ("granian", "gunicorn")


def add_server_argument(parser: Any) -> None:
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default="granian",
        help="web server: granian, as the image runs it (default), or gunicorn's threaded workers",
    )


def serve(
    server: str, port: int, *, workers: int, threads: int, env: dict[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    """Start the portal under ``server`` on 127.0.0.1:``port``, without an access log (not what
    is measured), in a session of its own so it can be stopped with its workers."""
    bin_dir = Path(sys.executable).parent
    if server == "granian":
        argv = [
            str(bin_dir / "granian"),
            "--interface=wsgi",
            f"--workers={workers}",
            f"--blocking-threads={threads}",
            "--respawn-failed-workers",
            "--workers-kill-timeout=5",
            "--host=127.0.0.1",
            f"--port={port}",
            "--log-level=warning",
            "--no-access-log",
            "portal.wsgi:application",
        ]
    else:
        argv = [
            str(bin_dir / "gunicorn"),
            "portal.wsgi",
            f"--workers={workers}",
            f"--threads={threads}",
            f"--bind=127.0.0.1:{port}",
            "--log-level=warning",
            # gunicorn.conf.py (read from the working directory) logs every request.
            "--access-logfile=/dev/null",
        ]
    return subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True)


def workers_of(server: subprocess.Popen[bytes]) -> list[int]:
    """The worker processes of a running server (children of its main process)."""
    found = subprocess.run(["ps", "-o", "pid=", "--ppid", str(server.pid)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(port: int) -> None:
    """Return once /healthz answers 200 on ``port``; exit after 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz", headers={"Host": "localhost"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    sys.exit("the web server did not answer within 60 s")


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its descendants (a web server's main process and workers)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += tree_cpu(int(child))
    except OSError:
        pass
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every process of every user."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / tick, sum(fields) / tick


def cpu_by_pid(root: int) -> dict[int, float]:
    """CPU seconds of ``root`` and each of its descendants, by process id."""
    found: dict[int, float] = {}
    try:
        fields = Path(f"/proc/{root}/stat").read_text().rsplit(")", 1)[1].split()
        found[root] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{root}/task").iterdir():
            for child in (task / "children").read_text().split():
                found.update(cpu_by_pid(int(child)))
    except OSError:
        pass
    return found


def database_cpu(connection: Any, before: dict[int, float]) -> dict[int, float]:
    """CPU seconds of the PostgreSQL backends connected to this database, less ``before``."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        pids = [pid for (pid,) in cursor.fetchall()]
    return {
        pid: cpu - before.get(pid, 0.0)
        for root in pids
        for pid, cpu in cpu_by_pid(root).items()
        if pid == root
    }


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (seconds), in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def healthz_load(server: str, seconds: float, threads: int) -> dict[str, Any]:
    """The baseline: /healthz (one ``SELECT 1``) from ``threads`` threads for ``seconds``."""
    host, port = server.removeprefix("http://").split(":")
    count = 0
    lock = threading.Lock()
    latencies: list[float] = []
    stop_at = time.time() + seconds

    def worker() -> None:
        nonlocal count
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        while time.time() < stop_at:
            started = time.perf_counter()
            conn.request("GET", "/healthz", headers={"Host": "localhost"})
            conn.getresponse().read()
            with lock:
                count += 1
                latencies.append(time.perf_counter() - started)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return {"count": count, "latencies": latencies}

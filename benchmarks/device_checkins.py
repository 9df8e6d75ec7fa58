"""Device check-ins per second with re-encryption in the path, and nothing lost when processes die.

    createdb -h 127.0.0.1 -U postgres pfx_delivery
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pfx_delivery REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python benchmarks/device_checkins.py

Builds a tenant of ``--devices`` devices on the six platforms, each with a primary user holding
one S/MIME encryption certificate and one profile per platform assigned to all users. Then, all
on this machine: the portal under its web server, the real connector agent (its key encrypts every
password) and ``--drivers`` simulator processes, each a :mod:`delivery.simulator` fleet that
enrols its devices (not timed), then checks in back to back: every device's first check-ins
queue a re-encryption job per certificate; the agent re-encrypts them to the device keys; the
device decrypts the password, opens the PFX, checks the thumbprint and reports.

Mid-run the agent is killed with SIGKILL and started again, and one web server worker is killed
with SIGKILL. At the end it checks that every job was done exactly once (one success event per
job, none failed) and every device reports Succeeded: nothing lost, nothing twice.

Printed: check-ins per second while devices are still receiving their certificates (the
re-encryption phase, kill included, and without the kill's recovery window) and once all have
them (steady state), p50/p95/p99 latency, jobs per second, the ``/healthz`` baseline from the
same clients, and the CPU each process used in the re-encryption phase beside the machine's.
Target: at least 200 check-ins per second.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pfx_delivery")
# Limits meant for one real device every few minutes; the benchmark's devices check in back to back.
for name in ("DEVICE_API_RATE_PER_MINUTE", "DEVICE_ENROLL_RATE_PER_MINUTE", "CONNECTOR_API_RATE_PER_MINUTE"):
    os.environ[name] = "1000000"
# A claim of a killed agent is handed out again after this long.
os.environ["CONNECTOR_JOB_TIMEOUT_SECONDS"] = "10"

import harness  # noqa: E402
from device_tenant import SECRET, build, certificates, reset  # noqa: E402

TARGET = 200.0
PASSPHRASE = "benchmark connector key store passphrase"


# --- The simulator processes ------------------------------------------------------------


def drive(args: argparse.Namespace) -> None:
    """One simulator process: enrol its devices, wait for the start, check in back to back."""
    from concurrent.futures import ThreadPoolExecutor

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from delivery.simulator import Api, DeviceApiError, DeviceSpec, SimulatedDevice

    specs = json.loads(Path(args.drive).read_text())
    api = Api(args.portal)
    fleet = []
    for item in specs:
        # Made from shared primes by the parent (see devtools.certificates.distinct_keys): skip the slow check.
        key = serialization.load_pem_private_key(
            item["key"].encode(), password=None, unsafe_skip_rsa_key_validation=True
        )
        assert isinstance(key, rsa.RSAPrivateKey)
        fleet.append(
            SimulatedDevice(api, DeviceSpec(item["device_id"], item["platform"], item["name"]), key=key)
        )
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(lambda d: d.enroll(secret=SECRET), fleet))
    print("enrolled", flush=True)
    start_at = float(sys.stdin.readline())
    time.sleep(max(0.0, start_at - time.time()))
    stop_at = start_at + args.max_seconds

    def stop_when_told() -> None:
        nonlocal stop_at
        sys.stdin.readline()
        stop_at = time.time()

    threading.Thread(target=stop_when_told, daemon=True).start()
    per_second: Counter[int] = Counter()
    latencies: list[tuple[float, float]] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    queue = list(fleet)
    random.Random(args.seed).shuffle(queue)

    def worker(mine: list[SimulatedDevice]) -> None:
        i = 0
        while (now := time.time()) < stop_at:
            device = mine[i % len(mine)]
            i += 1
            try:
                device.cycle()
            except (DeviceApiError, OSError) as exc:
                with lock:
                    errors[getattr(exc, "code", type(exc).__name__)] += 1
                continue
            done = time.time()
            with lock:
                per_second[int(done)] += 1
                latencies.append((done, done - now))

    cpu: list[tuple[float, float]] = []

    def sample_cpu() -> None:
        while time.time() < stop_at:
            cpu.append((time.time(), time.process_time()))
            time.sleep(0.5)

    threading.Thread(target=sample_cpu, daemon=True).start()
    threads = [threading.Thread(target=worker, args=(queue[i :: args.threads],)) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    json.dump(
        {
            "per_second": per_second,
            "latencies": latencies,
            "errors": errors,
            "cpu": [*cpu, (time.time(), time.process_time())],
        },
        sys.stdout,
    )


def healthz(args: argparse.Namespace) -> None:
    """Baseline driver: /healthz from as many threads as the simulators use, for ``seconds``."""
    json.dump(harness.healthz_load(args.portal, args.seconds, args.threads), sys.stdout)


# --- The run ---------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count

    from certs.models import EncryptionKey
    from connectors import enrolment
    from connectors.models import ConnectorEvent, ConnectorJob
    from delivery.models import DeliveryState
    from devtools.certificates import distinct_keys
    from directory.models import Device
    from portal.audit import Actor
    from profiles.models import DeliveryStatus

    if connection.vendor != "postgresql":
        sys.exit("Run this against PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    build(args.devices)
    reset()
    with connection.cursor() as cursor:
        # What autovacuum does between two runs (it is off on some hosts): each run deletes and
        # rewrites every job, state and credential row, and a table holding the dead rows of
        # earlier runs made each run slower than the last (169, 165, then 137 check-ins/s).
        cursor.execute("VACUUM ANALYZE")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    port = harness.free_port()
    server_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ALLOWED_HOSTS": "localhost,127.0.0.1"}
    children: list[subprocess.Popen[Any]] = []
    server = harness.serve(
        args.server, port, workers=args.workers, threads=args.threads_per_worker, env=env, cwd=ROOT
    )
    children.append(server)

    def agent(*extra: str) -> subprocess.Popen[Any]:
        argv = [
            sys.executable,
            "-m",
            "connectors.agent",
            "--server",
            server_url,
            "--state-dir",
            str(work / "agent"),
        ]
        agent_env = {"PATH": os.environ.get("PATH", ""), "CONNECTOR_KEY_PASSPHRASE": PASSPHRASE}
        with (work / "agent.log").open("ab") as log:
            proc = subprocess.Popen(
                [*argv, "--name", "Bench connector", "--interval", "5", "--log-level", "WARNING", *extra],
                cwd=ROOT,
                env=agent_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        children.append(proc)
        return proc

    try:
        harness.wait_http(port)
        import shutil

        shutil.rmtree(work / "agent", ignore_errors=True)
        token = enrolment.token_create(Actor.system("Benchmark"), name="Bench connector")[1]
        connector = agent("--enroll", token)
        deadline = time.monotonic() + 60
        while not EncryptionKey.objects.filter(possession_proven_at__isnull=False).exists():
            if time.monotonic() > deadline or connector.poll() is not None:
                sys.exit(f"the connector published no key; see {work / 'agent.log'}")
            time.sleep(0.3)
        certificates(args.devices)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

        keys = distinct_keys()
        devices = list(
            Device.objects.filter(name__startswith="BENCH-")
            .order_by("pk")
            .values("device_id", "platform", "name")
        )
        from cryptography.hazmat.primitives import serialization

        slices: list[list[dict[str, str]]] = [[] for _ in range(args.drivers)]
        for i, d in enumerate(devices):
            pem = (
                next(keys)
                .private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                .decode()
            )
            slices[i % args.drivers].append(
                {"device_id": str(d["device_id"]), "platform": d["platform"], "name": d["name"], "key": pem}
            )
        drivers = []
        for i, part in enumerate(slices):
            path = work / f"devices-{i}.json"
            path.write_text(json.dumps(part))
            drivers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--drive",
                        str(path),
                        "--portal",
                        server_url,
                        f"--max-seconds={args.max_seconds}",
                        f"--threads={args.client_threads}",
                        f"--seed={i}",
                    ],
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        children.extend(drivers)
        for proc in drivers:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "enrolled":
                sys.exit("a simulator process could not enrol its devices")
        # Everyone starts at once, after enrolment (not measured).
        start_at = time.time() + 1
        for proc in drivers:
            assert proc.stdin is not None
            proc.stdin.write(f"{start_at}\n")
            proc.stdin.flush()
        time.sleep(max(0.0, start_at - time.time()))

        # Kill the agent once a quarter of the jobs are done, and one web worker a little later.
        killed_agent_at = killed_worker_at = all_delivered_at = None
        jobs = ConnectorJob.objects.filter(kind=ConnectorJob.Kind.DEVICE)
        # CPU seconds by process (a killed one keeps its last reading), and the machine's.
        web_cpu: dict[int, float] = {}
        agent_cpu: dict[int, float] = {}
        db_cpu: dict[int, float] = {}  # PostgreSQL backends serving this database
        db_before = harness.database_cpu(connection, {})
        # What the web workers and the agent used before the start (booting, enrolling the fleet)
        # is not the phase's: a process started later (a respawned worker) counts from zero.
        web_before, agent_before = harness.cpu_by_pid(server.pid), harness.cpu_by_pid(connector.pid)
        machine_at_start = harness.machine_cpu()
        machine_at_split: tuple[float, float] | None = None
        web_at_split = agent_at_split = db_at_split = 0.0
        while any(p.poll() is None for p in drivers):
            now = time.time()
            web_cpu.update(harness.cpu_by_pid(server.pid))
            agent_cpu.update(harness.cpu_by_pid(connector.pid))
            db_cpu.update(harness.database_cpu(connection, db_before))
            done = jobs.filter(state=ConnectorJob.State.DONE).count()
            if killed_agent_at is None and done >= args.devices // 4:
                os.kill(connector.pid, signal.SIGKILL)
                connector.wait()
                killed_agent_at = now - start_at
                connector = agent()
            if (
                killed_worker_at is None
                and killed_agent_at is not None
                and now - start_at > killed_agent_at + 2
            ):
                workers = harness.workers_of(server)
                if workers:
                    os.kill(workers[0], signal.SIGKILL)
                    killed_worker_at = now - start_at
            if all_delivered_at is None and done == args.devices:
                delivered = DeliveryState.objects.filter(status=DeliveryStatus.SUCCEEDED).count()
                if delivered == args.devices:
                    all_delivered_at = now
                    machine_at_split = harness.machine_cpu()
                    web_at_split = sum(v - web_before.get(pid, 0.0) for pid, v in web_cpu.items())
                    agent_at_split = sum(v - agent_before.get(pid, 0.0) for pid, v in agent_cpu.items())
                    db_at_split = sum(db_cpu.values())
            if all_delivered_at is not None and now - all_delivered_at >= args.seconds:
                for proc in drivers:
                    assert proc.stdin is not None
                    proc.stdin.write("stop\n")
                    proc.stdin.flush()
                break
            time.sleep(0.5)
        results = []
        for proc in drivers:
            out, _ = proc.communicate(timeout=120)
            results.append(json.loads(out))

        # The baseline: /healthz from the same number of client threads, same processes.
        baseline = []
        for _ in range(args.drivers):
            baseline.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--healthz",
                        "--portal",
                        server_url,
                        "--seconds=10",
                        f"--threads={args.client_threads}",
                    ],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        base = [json.loads(p.communicate()[0]) for p in baseline]
    finally:
        for proc in children:
            if proc.poll() is None:
                if proc.pid == server.pid:
                    os.killpg(server.pid, signal.SIGTERM)
                else:
                    proc.terminate()
        for proc in children:
            proc.wait(timeout=30)

    per_second: Counter[int] = Counter()
    latencies: list[tuple[float, float]] = []
    errors: Counter[str] = Counter()
    for result in results:
        per_second.update({int(k): v for k, v in result["per_second"].items()})
        latencies.extend((t, d) for t, d in result["latencies"])
        errors.update(result["errors"])
    end = max(per_second) + 1 if per_second else start_at
    split = all_delivered_at or end
    # The recovery window: from the agent's kill until the last job it held was done by its
    # successor (claims of a dead agent wait CONNECTOR_JOB_TIMEOUT_SECONDS to be handed out again).
    retried = jobs.filter(attempts__gte=2, finished_at__isnull=False).values_list("finished_at", flat=True)
    recovered_at = max((t.timestamp() for t in retried if t is not None), default=None)
    window = (start_at + killed_agent_at, recovered_at) if killed_agent_at and recovered_at else None

    def rate(first: float, last: float, skip: tuple[float, float] | None = None) -> tuple[int, float]:
        def counted(k: int) -> bool:
            return first <= k < last and not (skip and skip[0] <= k < skip[1])

        total = sum(v for k, v in per_second.items() if counted(k))
        seconds = last - first - (max(0.0, min(last, skip[1]) - max(first, skip[0])) if skip else 0.0)
        return total, total / max(1.0, seconds)

    def row(label: str, count: int, per_s: float, lat: list[float]) -> str:
        p50, p95, p99 = (harness.percentile(lat, q) for q in (0.5, 0.95, 0.99))
        return f"  {label:<52} {count:9d} {per_s:8.1f} {p50:8.1f} {p95:8.1f} {p99:8.1f}"

    phase1, rate1 = rate(start_at, split)
    phase2, rate2 = rate(split, end)
    lat1 = [d for t, d in latencies if t < split]
    lat2 = [d for t, d in latencies if t >= split]
    job_states = dict(jobs.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    successes = ConnectorEvent.objects.filter(event_id=ConnectorEvent.REENCRYPT_SUCCESS).count()
    states = dict(
        DeliveryState.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    done_times = sorted(
        t
        for t in jobs.filter(state=ConnectorJob.State.DONE).values_list("finished_at", flat=True)
        if t is not None
    )
    span = (done_times[-1] - done_times[0]).total_seconds() if len(done_times) > 1 else 0.0
    base_count = sum(b["count"] for b in base)
    base_lat = [x for b in base for x in b["latencies"]]

    print(
        f"\n{args.devices} devices, {args.drivers} simulator processes x {args.client_threads} threads, "
        f"{args.server} {args.workers} workers x {args.threads_per_worker} threads, one connector agent; "
        f"{os.cpu_count()} CPUs shared by all"
    )
    print(f"  {'phase':<52} {'check-ins':>9} {'per s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    print(row(f"re-encryption ({split - start_at:.1f} s, until every device Succeeded)", phase1, rate1, lat1))
    if window is not None:
        count, per_s = rate(start_at, split, window)
        outside = [d for t, d in latencies if t < split and not window[0] <= t < window[1]]
        label = f"  without the kill's recovery window ({window[1] - window[0]:.1f} s)"
        print(row(label, count, per_s, outside))
    print(row("steady state (all delivered)", phase2, rate2, lat2))
    print(row("baseline: /healthz, same clients", base_count, base_count / 10, base_lat))
    print(f"  target: at least {TARGET:.0f} check-ins per second")

    if machine_at_split is not None:
        busy, total = (machine_at_split[i] - machine_at_start[i] for i in (0, 1))
        sim = sum(
            (c[-1] - c[0]) if len(c) > 1 else 0.0
            for c in ([c for t, c in r["cpu"] if t <= split] for r in results)
        )
        ours = web_at_split + sim + agent_at_split + db_at_split
        print(
            f"\nCPU in the re-encryption phase: machine {busy:.0f} of {total:.0f} CPU-s busy (every process, "
            f"other users' too); web server {web_at_split:.0f}, simulators {sim:.0f}, agent {agent_at_split:.0f}, "
            f"PostgreSQL {db_at_split:.0f} (this database's backends), the rest {busy - ours:.0f}. "
            f"This run's own processes: {ours * 1000 / max(1, phase1):.1f} ms CPU per check-in, so 2 cores of "
            f"their own would carry about {2 * phase1 / max(ours, 1e-9):.0f} per second"
        )
    print(
        f"\nRe-encryption jobs: {job_states} ({len(done_times) / span if span else 0:.1f} per second); "
        f"success events {successes} for {args.devices} jobs"
    )
    if all_delivered_at:
        print(f"Every device Succeeded {all_delivered_at - start_at:.1f} s after the start")
    recovered = (
        f"; its last held job done {recovered_at - start_at:.1f} s" if recovered_at else "; it held no job"
    )
    print(
        f"Connector agent killed (SIGKILL) at {killed_agent_at or 0:.1f} s and restarted{recovered}; "
        f"web worker killed at {killed_worker_at} s"
    )
    print(f"Delivery states: {states}; client errors: {dict(errors)}")
    lost = sum(n for state, n in job_states.items() if state != "done") + (
        args.devices - sum(job_states.values())
    )
    twice = successes - job_states.get("done", 0)
    print(f"Jobs lost: {lost}; jobs done twice: {twice}")
    if lost or twice or states.get(DeliveryStatus.SUCCEEDED, 0) != args.devices:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=3000)
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="steady state measured after all are delivered"
    )
    parser.add_argument("--max-seconds", type=float, default=900.0, help="give up after this long")
    parser.add_argument("--drivers", type=int, default=2, help="simulator processes")
    parser.add_argument("--client-threads", type=int, default=8, help="threads per simulator process")
    parser.add_argument("--workers", type=int, default=3, help="web server workers")
    harness.add_server_argument(parser)
    parser.add_argument("--threads-per-worker", type=int, default=4)
    parser.add_argument("--work", default=str(ROOT / "var" / "bench-devices"))
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    parser.add_argument("--healthz", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--portal", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive(args)
    elif args.healthz:
        healthz(args)
    else:
        measure(args)


if __name__ == "__main__":
    main()

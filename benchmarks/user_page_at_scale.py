"""The help desk's user page at 100,000 users, 300,000 certificates, 150,000 devices and 50 profiles.

    createdb -h 127.0.0.1 -U postgres pfx_reports_scale
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pfx_reports_scale \\
        .venv/bin/python benchmarks/user_page_at_scale.py

Builds the tenant of pages_at_scale.py (once; ``--rebuild`` to start again), keeps 150,000 of its
devices, and writes the delivery states such a tenant has: each device holds the certificates of
its primary user for two or three of the profiles of its platform, most Succeeded, some in Error
(with error codes), Pending or Removed. Then serves the portal with granian (2 workers x 4
threads, DEBUG off) and drives the directory user page of 64 users from a separate process with
16 concurrent keep-alive clients, for an administrator with every permission and for a Help Desk
Operator over one scope tag (half of the profiles): pages kept, as on a second view, and then
with nothing kept (``PORTAL_FRAGMENT_MAX_AGE=0``), as on a user's first view. Prints p50/p95/p99,
throughput, the web processes' CPU per request and the queries per page (rendered and kept) for
users with few and many profiles, certificates and devices; the baseline in the same run is
``/healthz`` (one ``SELECT 1``) under the same load. Set ``REDIS_URL`` as in production (sessions
are then read from Redis).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pfx_reports_scale")

import harness  # noqa: E402
import pages_at_scale as pages  # noqa: E402  (sets the Django environment first)

TARGET_P95_MS = 50.0
DEVICES = 150_000

# Status of a delivery row by (device id + profile id) % 100: mostly installed.
STATES = (
    "CASE WHEN h < 80 THEN 'succeeded' WHEN h < 90 THEN 'error' WHEN h < 97 THEN 'pending' ELSE 'removed' END"
)
CODES = "(ARRAY['pfx_open_failed', 'thumbprint_mismatch', 'key_storage_full', 'user_cancelled'])[h % 4 + 1]"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rebuild", action="store_true", help="build the tenant again")
    parser.add_argument("--clients", type=int, default=16)
    harness.add_server_argument(parser)
    parser.add_argument("--seconds", type=float, default=20.0, help="load time per page")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("Run this against PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    pages.build(1.0, args.rebuild)
    _keep_devices(DEVICES)
    _build_delivery_states(args.rebuild)
    measure(args)


def _keep_devices(wanted: int) -> None:
    from django.db import connection

    from directory.models import Device

    extra = Device.objects.count() - wanted
    if extra <= 0:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM directory_device ORDER BY id DESC OFFSET %s LIMIT 1", [extra - 1])
        (cutoff,) = cursor.fetchone()
        # The rows naming a device go first (the database's foreign keys do not cascade).
        for table in (
            "directory_groupdevicemember",
            "delivery_deliverystate",
            "delivery_devicecredential",
            "delivery_deviceenrollmenttoken",
        ):
            cursor.execute(f"DELETE FROM {table} WHERE device_id >= %s", [cutoff])
        cursor.execute("DELETE FROM directory_device WHERE id >= %s", [cutoff])
        cursor.execute("VACUUM ANALYZE directory_groupdevicemember")
        cursor.execute("VACUUM ANALYZE directory_device")


def _build_delivery_states(rebuild: bool) -> None:
    from django.db import connection

    from delivery.models import DeliveryState

    if DeliveryState.objects.exists() and not rebuild:
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE delivery_deliverystate")
        # Each device: the profiles of its platform whose id and the device's agree modulo 3 (two or
        # three of the eight or nine per platform), each with the primary user's certificates of the
        # profile's purpose.
        cursor.execute(
            f"""
            INSERT INTO delivery_deliverystate (profile_id, device_id, user_id, certificate_id,
                certificate_thumbprint, status, error_code, error_message, source, source_detail, job_id,
                sent_at, changed_at, reported_at, updated_at)
            SELECT p.id, d.id, d.primary_user_id, c.id, lower(c.thumbprint), {STATES},
                CASE WHEN h >= 80 AND h < 90 THEN {CODES} ELSE '' END,
                CASE WHEN h >= 80 AND h < 90 THEN 'The device could not install the certificate.' ELSE '' END,
                'portal', '', NULL, now() - (h || ' hours')::interval, now() - (h || ' hours')::interval,
                now() - (h || ' minutes')::interval, now()
            FROM (
                SELECT d.id, d.primary_user_id, d.platform, p.id AS profile_id, ((d.id * 7 + p.id * 13) % 100) AS h
                FROM directory_device d JOIN profiles_profile p ON p.platform = d.platform AND (p.id + d.id) % 3 = 0
                WHERE d.primary_user_id IS NOT NULL
            ) d
            JOIN profiles_profile p ON p.id = d.profile_id
            JOIN certs_certificate c ON c.user_id = d.primary_user_id AND c.purpose = p.intended_purpose
            """
        )
        cursor.execute("VACUUM ANALYZE delivery_deliverystate")
    print(
        f"  {DeliveryState.objects.count():,} delivery states built in {time.perf_counter() - started:.1f} s"
    )


def _users_by_rows() -> tuple[list[str], list[tuple[str, int]]]:
    """64 sampled users with delivery rows, and a few with the fewest and the most rows (for query counts)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT u.object_id, COUNT(*) FROM delivery_deliverystate s JOIN directory_directoryuser u "
            "ON u.id = s.user_id GROUP BY u.object_id ORDER BY COUNT(*), u.object_id"
        )
        ranked = [(str(object_id), n) for object_id, n in cursor.fetchall()]
    rng = random.Random(3)
    sample = [object_id for object_id, _n in rng.sample(ranked, min(64, len(ranked)))]
    extremes = ranked[:2] + ranked[-2:]
    return sample, extremes


def measure(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from certs.models import Certificate
    from delivery.models import DeliveryState
    from directory.models import Device, DirectoryUser
    from portal import summaries
    from profiles.models import Profile

    print(
        f"Tenant: {DirectoryUser.objects.count():,} users, {Certificate.objects.count():,} certificates, "
        f"{Device.objects.count():,} devices, {Profile.objects.count()} profiles, "
        f"{DeliveryState.objects.count():,} delivery states"
    )
    sessions: dict[str, tuple[Client, str]] = {}
    for label, person in (("admin", pages._admin()), ("help desk", pages._help_desk())):
        client = Client()
        client.force_login(person)
        sessions[label] = (client, pages._browser_cookies(client))
    sample, extremes = _users_by_rows()

    print(
        "\nQueries per user page, rendered / kept (users with the fewest and the most certificate x device rows):"
    )
    for label, (client, _cookie) in sessions.items():
        counts = []
        for object_id, rows in extremes:
            client.get(f"/users/{object_id}/", HTTP_HOST="localhost")
            found = []
            for fresh in (True, False):
                if fresh:
                    summaries.forget()
                with CaptureQueriesContext(connection) as queries:
                    response = client.get(f"/users/{object_id}/", HTTP_HOST="localhost")
                if response.status_code != 200:
                    sys.exit(f"/users/{object_id}/ answered {response.status_code}")
                found.append(str(len(queries)))
            counts.append(f"{rows} rows: {' / '.join(found)}")
        print(f"  {label:<12} {', '.join(counts)}")

    print(
        f"\n{args.server} 2 workers x 4 threads, {args.clients} clients from a separate process, "
        f"{args.seconds:.0f} s per page (target p95 < {TARGET_P95_MS:.0f} ms)"
    )
    print(
        f"  {'page':<34} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>7}"
        f" {'web CPU ms/req':>15}"
    )
    runs = [("Baseline: /healthz", "admin", ["/healthz"])]
    runs += [(f"User page ({label})", label, [f"/users/{o}/" for o in sample]) for label in sessions]
    _serve_and_load(args, sessions, runs, {})
    # The first view of a user (the help desk mostly opens a user once): nothing kept.
    runs = [("User page (help desk, first view)", "help desk", [f"/users/{o}/" for o in sample])]
    _serve_and_load(args, sessions, runs, {"PORTAL_FRAGMENT_MAX_AGE": "0"})


def _serve_and_load(
    args: argparse.Namespace,
    sessions: dict[str, tuple[Any, str]],
    runs: list[tuple[str, str, list[str]]],
    settings: dict[str, str],
) -> None:
    port = harness.free_port()
    env = {**os.environ, "ALLOWED_HOSTS": "localhost,127.0.0.1", **settings}
    server = harness.serve(args.server, port, workers=2, threads=4, env=env, cwd=ROOT.parent)
    try:
        harness.wait_http(port)
        for name, label, paths in runs:
            cookie = sessions[label][1]
            # Warm each worker: long enough that both have rendered every page they keep.
            pages._load(port, cookie, paths, args.clients, 8.0)
            cpu = harness.tree_cpu(server.pid)
            result: dict[str, Any] = pages._load(port, cookie, paths, args.clients, args.seconds)
            cpu = harness.tree_cpu(server.pid) - cpu
            lat = result["latencies"]
            if not lat:
                print(f"  {name:<34} no answers: {result['errors']}")
                continue
            print(
                f"  {name:<34} {statistics.median(lat) * 1000:8.1f} {harness.percentile(lat, 0.95):8.1f} "
                f"{harness.percentile(lat, 0.99):8.1f} {len(lat) / result['elapsed']:8.1f} {result['error_count']:7d}"
                f" {cpu / len(lat) * 1000:15.2f}"
            )
            if result["errors"]:
                print(f"    first errors: {result['errors']}")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()

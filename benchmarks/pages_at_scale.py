"""Latency and query counts of the pages admins live on, in a large tenant on PostgreSQL.

    createdb -h 127.0.0.1 -U postgres pfx_pages
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pfx_pages REDIS_URL=redis://127.0.0.1:6379/3 \
        .venv/bin/python benchmarks/pages_at_scale.py

Builds (once; ``--rebuild`` to start again) 100,000 users, 200,000 devices, 1,000 groups with
about 700,000 memberships, 297,000 certificates, 50 profiles and their audit trail, then serves with
granian (2 workers x 4 threads, DEBUG off; ``--server gunicorn`` for the earlier server) and drives
each page from a separate process with 16 concurrent keep-alive clients. Pages are measured for an
administrator with every permission and a Help Desk Operator over one scope tag (who sees half of
the profiles): p50/p95/p99, throughput and queries per request (for several objects), beside
``/healthz`` (one ``SELECT 1``), the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pfx_pages")
# Sessions are made here; a second factor is not what is measured.
os.environ["PORTAL_ENFORCE_MFA"] = "false"

import harness  # noqa: E402

TARGET_P95_MS = 50.0


def _browser_cookies(client: Any) -> str:
    """A signed-in browser's Cookie header: its session, and the CSRF cookie its first page set."""
    from django.utils.crypto import get_random_string

    return f"sessionid={client.cookies['sessionid'].value}; csrftoken={get_random_string(32)}"


def drive(base: str, cookie: str, paths: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """Request ``paths`` round-robin over ``clients`` keep-alive connections for ``seconds``, and
    until every client has asked for every path once (so a warm-up leaves each page in each worker).

    One asyncio loop on raw sockets: the client shares the machine's cores with the server, and
    a thread per connection with http.client would cost more CPU than some of the pages measured.
    """
    return asyncio.run(_drive(base, cookie, paths, clients, seconds))


async def _drive(base: str, cookie: str, paths: list[str], clients: int, seconds: float) -> dict[str, Any]:
    host, port = base.split(":")
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n\r\n".encode() for path in paths
    ]

    async def client(offset: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        i = offset
        while time.perf_counter() < stop_at or i - offset < len(paths):
            path = paths[i % len(paths)]
            request = requests[i % len(paths)]
            i += 1
            started = time.perf_counter()
            try:
                writer.write(request)
                status = await _read_response(reader)
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                errors.append(f"{path}: {exc!r}")
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port))
                continue
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"{path}: HTTP {status}")
        writer.close()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "latencies": latencies,
        "elapsed": elapsed,
        "client_cpu": time.process_time() - cpu,
        "errors": errors[:5],
        "error_count": len(errors),
    }


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length or chunked) and return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        raise ValueError("a response without a length on a kept-alive connection")
    return status


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rebuild", action="store_true", help="build the tenant again")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full tenant size")
    parser.add_argument("--clients", type=int, default=16)
    harness.add_server_argument(parser)
    parser.add_argument("--seconds", type=float, default=15.0, help="load time per page")
    parser.add_argument("--drive", nargs=2, metavar=("HOST:PORT", "COOKIE"), help=argparse.SUPPRESS)
    parser.add_argument("--paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        result = drive(args.drive[0], args.drive[1], args.paths, args.clients, args.seconds)
        json.dump(result, sys.stdout)
        return
    measure(args)


def measure(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from directory.models import DirectoryUser

    if connection.vendor != "postgresql":
        sys.exit("Run this against PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    build(args.scale, args.rebuild)
    sessions: dict[str, tuple[Client, str]] = {}
    for label, person in (("admin", _admin()), ("help desk", _help_desk())):
        client = Client()
        client.force_login(person)
        sessions[label] = (client, _browser_cookies(client))

    users = list(
        DirectoryUser.objects.filter(certificates__isnull=False, devices__isnull=False)
        .distinct()
        .order_by("pk")
        .values_list("object_id", flat=True)[:200]
    )
    rng = random.Random(3)
    sample = rng.sample(users, min(64, len(users)))
    one_user = DirectoryUser.objects.get(object_id=sample[0]).upn
    # (name, session, paths): each page for the administrator, then for the scoped help desk.
    pages: list[tuple[str, str, list[str]]] = []
    for label in sessions:
        suffix = "" if label == "admin" else f" ({label})"
        pages += [
            (f"Directory user page{suffix}", label, [f"/users/{object_id}/" for object_id in sample]),
            # Twice: the first view counts (unless kept from before), the next reuses the counts.
            (f"Home{suffix}", label, ["/", "/"]),
            (
                f"Certificate list{suffix}",
                label,
                [
                    "/certificates/",
                    "/certificates/?page=50",
                    "/certificates/?q=user1",
                    f"/certificates/?q={one_user}",
                    "/certificates/?sort=upn&page=20",
                ],
            ),
        ]
    pages += [
        ("Users list", "admin", ["/users/", "/users/?page=40", "/users/?q=user1", "/users/?sort=-upn"]),
        ("Devices list", "admin", ["/devices/", "/devices/?page=40", "/devices/?sort=os"]),
        ("Groups list", "admin", ["/groups/", "/groups/?sort=-members", "/groups/?page=5"]),
    ]
    floor = [("Baseline: /healthz", "admin", ["/healthz"])]

    print(
        "\nQueries per request (several objects each; the same count means it does not grow with the data),"
        "\nrendered, then again while nothing changed (kept pieces: portal.summaries.fragment):"
    )
    for name, label, paths in pages:
        client = sessions[label][0]
        rendered: list[int] = []
        kept: list[int] = []
        for counts in (rendered, kept):
            for path in paths[:5]:
                with CaptureQueriesContext(connection) as queries:
                    response = client.get(path, HTTP_HOST="localhost")
                if response.status_code != 200:
                    sys.exit(f"{path} answered {response.status_code}")
                counts.append(len(queries))
        print(f"  {name:<34} {rendered}  again: {kept}")

    port = harness.free_port()
    env = {**os.environ, "ALLOWED_HOSTS": "localhost,127.0.0.1"}
    server = harness.serve(args.server, port, workers=2, threads=4, env=env, cwd=ROOT)
    try:
        harness.wait_http(port)
        print(
            f"\n{args.server} 2 workers x 4 threads, {args.clients} clients from a separate process, "
            f"{args.seconds:.0f} s per page (target p95 < {TARGET_P95_MS:.0f} ms)"
        )
        print(
            f"  {'page':<34} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>7}"
            f" {'server CPU ms/req':>18} {'client':>7}"
        )
        for name, label, paths in [*floor, *pages]:
            cookie = sessions[label][1]
            # Warm each worker's connections and the pages it keeps, then measure.
            _load(port, cookie, paths, args.clients, 2.0)
            server_cpu = harness.tree_cpu(server.pid)
            result = _load(port, cookie, paths, args.clients, args.seconds)
            server_cpu = harness.tree_cpu(server.pid) - server_cpu
            lat = result["latencies"]
            if not lat:
                print(f"  {name:<34} no answers: {result['errors']}")
                continue
            print(
                f"  {name:<34} {statistics.median(lat) * 1000:8.1f} {harness.percentile(lat, 0.95):8.1f} "
                f"{harness.percentile(lat, 0.99):8.1f} {len(lat) / result['elapsed']:8.1f} {result['error_count']:7d}"
                f" {server_cpu / len(lat) * 1000:18.2f} {result['client_cpu'] / len(lat) * 1000:7.2f}"
            )
            if result["errors"]:
                print(f"    first errors: {result['errors']}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _load(port: int, cookie: str, paths: list[str], clients: int, seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--drive",
            f"127.0.0.1:{port}",
            cookie,
            f"--clients={clients}",
            f"--seconds={seconds}",
            "--paths",
            *paths,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _admin() -> Any:
    from portal.models import User

    admin, _ = User.objects.get_or_create(
        email="bench-admin@contoso.example", defaults={"is_superuser": True, "is_staff": True}
    )
    return admin


def _help_desk() -> Any:
    """A Help Desk Operator over the "Bench Europe" tag, which half of the profiles carry."""
    from portal.models import Role, RoleAssignment, ScopeTag, User

    person, _ = User.objects.get_or_create(email="bench-helpdesk@contoso.example")
    tag, _ = ScopeTag.objects.get_or_create(name="Bench Europe")
    role = Role.objects.get(key="help_desk_operator")
    assignment, _ = RoleAssignment.objects.get_or_create(name="Bench help desk (Europe)", role=role)
    assignment.members.add(person)
    assignment.scope_tags.set([tag])
    return person


CERTIFICATES_PER_USER = 3
PROFILES = 50
BATCH = 10_000


def build(scale: float, rebuild: bool) -> None:
    from profile_evaluation import USERS, build_tenant

    from certs.models import Certificate
    from directory.models import DirectoryUser

    users = int(USERS * scale)
    if rebuild or DirectoryUser.objects.count() != users:
        started = time.perf_counter()
        build_tenant(scale)
        print(f"  directory built in {time.perf_counter() - started:.1f} s")
    if rebuild or Certificate.objects.count() < users * 2:
        started = time.perf_counter()
        _build_certificates()
        print(f"  certificates built in {time.perf_counter() - started:.1f} s")
    _build_profiles()
    _build_audit_trail()
    from django.db import connection

    from directory.models import Device, Group
    from portal.models import AuditEvent
    from profiles.models import Profile

    with connection.cursor() as cursor:
        # As autovacuum does after a bulk load: statistics, and the visibility map index-only scans use.
        cursor.execute("VACUUM ANALYZE")
    print(
        f"Tenant: {DirectoryUser.objects.count():,} users, {Device.objects.count():,} devices, "
        f"{Group.objects.count():,} groups, {Certificate.objects.count():,} certificates, "
        f"{Profile.objects.count()} profiles, {AuditEvent.objects.count():,} audit events"
    )


def _build_certificates() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from django.db import connection
    from django.utils import timezone

    from certs.models import Certificate, EncryptionKey, GraphState, Padding, Purpose
    from directory.models import DirectoryUser

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE certs_certificate CASCADE")
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    key, _ = EncryptionKey.objects.get_or_create(
        provider_name="Microsoft Software Key Storage Provider",
        key_name="bench-key",
        defaults={"size": 2048, "fingerprint": "b" * 64, "public_key_pem": pem},
    )
    rng = random.Random(11)
    now = timezone.now()
    purposes = [Purpose.SMIME_ENCRYPTION, Purpose.SMIME_SIGNING, Purpose.SMIME_ENCRYPTION]
    states = [GraphState.SYNCED] * 8 + [GraphState.PENDING, GraphState.FAILED]
    rows: list[Certificate] = []
    # 99% of users hold certificates, CERTIFICATES_PER_USER each.
    for pk, upn in DirectoryUser.objects.order_by("pk").values_list("pk", "upn").iterator():
        if pk % 100 == 0:
            continue
        for n in range(CERTIFICATES_PER_USER):
            not_after = now + timedelta(days=rng.randint(-400, 700))
            rows.append(
                Certificate(
                    user_id=pk,
                    upn=upn,
                    thumbprint=f"{pk:020X}{n:020X}",
                    purpose=purposes[n],
                    subject=f"CN={upn}",
                    issuer=f"CN=Contoso Issuing CA {pk % 3 + 1}",
                    serial=f"{pk:x}{n:02x}",
                    not_before=not_after - timedelta(days=730),
                    not_after=not_after,
                    key_type="rsa",
                    key_size=2048,
                    encryption_key=key,
                    padding=Padding.OAEP_SHA512,
                    pfx_blob=b"\x30\x82",
                    encrypted_password=b"\x00" * 256,
                    graph_state=rng.choice(states),
                )
            )
            if len(rows) >= BATCH:
                Certificate.objects.bulk_create(rows)
                rows = []
    Certificate.objects.bulk_create(rows)


def _build_profiles() -> None:
    from directory.models import Group, Platform, WindowsEdition
    from portal.models import ScopeTag
    from profiles.models import (
        ApplicabilityRule,
        IntendedPurpose,
        KeyStorageProvider,
        Profile,
        ProfileAssignment,
    )

    europe, _ = ScopeTag.objects.get_or_create(name="Bench Europe")
    if Profile.objects.filter(name__startswith="Bench ").count() == PROFILES:
        if not Profile.objects.filter(scope_tags=europe).exists():
            for n, profile in enumerate(Profile.objects.order_by("name")):
                profile.scope_tags.set([europe if n % 2 else ScopeTag.default()])
        return
    Profile.objects.all().delete()
    user_groups = list(Group.objects.filter(kind=Group.Kind.USER).order_by("pk").values_list("pk", flat=True))
    device_groups = list(
        Group.objects.filter(kind=Group.Kind.DEVICE).order_by("pk").values_list("pk", flat=True)
    )
    platforms = list(Platform)
    purposes = [IntendedPurpose.SMIME_ENCRYPTION, IntendedPurpose.SMIME_SIGNING]
    rng = random.Random(5)
    for n in range(PROFILES):
        platform = platforms[n % len(platforms)]
        profile = Profile.objects.create(
            name=f"Bench {n:02d} {platform.label}",
            platform=platform,
            intended_purpose=purposes[n % 2],
            key_storage_provider=KeyStorageProvider.SOFTWARE if platform == Platform.WINDOWS else "",
            all_users=n % 10 == 0,
        )
        profile.scope_tags.set([europe if n % 2 else ScopeTag.default()])
        chosen = rng.sample(user_groups, 6)
        rows = [ProfileAssignment(profile=profile, group_id=g, mode="include") for g in chosen[:5]]
        rows.append(ProfileAssignment(profile=profile, group_id=chosen[5], mode="exclude"))
        rows += [
            ProfileAssignment(profile=profile, group_id=g, mode="include")
            for g in rng.sample(device_groups, 3)
        ]
        ProfileAssignment.objects.bulk_create(rows)
        if platform == Platform.WINDOWS and n % 2:
            ApplicabilityRule.objects.create(
                profile=profile,
                position=0,
                rule_type=ApplicabilityRule.RuleType.EXCLUDE,
                os_property=ApplicabilityRule.Property.OS_EDITION,
                editions=[WindowsEdition.HOME],
            )


UPLOADS_PER_IMPORT = 300


def _build_audit_trail() -> None:
    """The events such a tenant has written: an administrator's import of about 300 certificates,
    then one "Upload certificate to Intune" event per certificate, over the past year."""
    from django.db import connection

    from certs.models import Certificate
    from portal.models import AuditEvent, ScopeTag

    wanted = Certificate.objects.count()
    if AuditEvent.objects.filter(activity="Upload certificate to Intune").count() >= wanted:
        return
    default = ScopeTag.default()
    tags = json.dumps({str(default.pk): default.name})
    step = 365 * 86400 / (wanted + wanted // UPLOADS_PER_IMPORT)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO portal_auditevent (code, occurred_at, actor_id, actor_type, actor_name, actor_ip,
                activity, operation, category, result, correlation_id, resources,
                scope_area, scope_tags, scope_through)
            SELECT gen_random_uuid(), now() - interval '365 days' + g * interval '{step} seconds', NULL,
                CASE WHEN g %% {UPLOADS_PER_IMPORT + 1} = 0 THEN 'user' ELSE 'system' END,
                CASE WHEN g %% {UPLOADS_PER_IMPORT + 1} = 0 THEN 'bench-admin@contoso.example'
                     ELSE 'Intune upload' END,
                NULL,
                CASE WHEN g %% {UPLOADS_PER_IMPORT + 1} = 0 THEN 'Import certificates'
                     ELSE 'Upload certificate to Intune' END,
                'create', 'Certificates', 'success', gen_random_uuid(),
                jsonb_build_array(jsonb_build_object('type', 'Certificate', 'id', g::text,
                    'name', 'user' || g || '@contoso.example', 'changes', '[]'::jsonb)),
                'certificates', %s::jsonb, 'directory.read'
            FROM generate_series(1, %s) g
            """,
            [tags, wanted + wanted // UPLOADS_PER_IMPORT],
        )


if __name__ == "__main__":
    main()

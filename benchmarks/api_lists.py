"""Latency and query counts of the API's list endpoints in a large tenant on PostgreSQL, and the rate of
an import through the API next to the same import through the bulk upload page.

    createdb -h 127.0.0.1 -U postgres pfx_api_scale
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pfx_api_scale .venv/bin/python benchmarks/api_lists.py

Builds (once; ``--rebuild`` to start again) the tenant of ``pages_at_scale.py``: 100,000 users,
about 297,000 certificates, 50 profiles and their audit trail. Then serves the portal with granian
(2 workers x 4 threads, DEBUG off; ``--server gunicorn`` for the earlier server) and drives each
endpoint with 16 concurrent keep-alive clients from a separate process, for two API tokens: an
administrator with every permission, and a Help Desk Operator over one scope tag. It prints
p50/p95/p99 latency, throughput, the CPU the server and the client spent per request (the
server's is what a busy machine changes least) and the queries one request runs for several
different requests (the same count means it does not grow with the data). The
baseline in the same run is ``/healthz`` (one ``SELECT 1``) under the same load.

``--import-files N`` (default 10,000) then imports N PFX files twice, once through
``POST /api/v1/imports`` and once through the bulk upload page, each as one ZIP with its manifest,
processed by the same pipeline in this process, and prints both rates.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pfx_api_scale")
os.environ["PORTAL_ENFORCE_MFA"] = "false"
# The load is many calls with one token: the rate limit is not what is measured.
os.environ["API_RATE_LIMIT"] = "100000000"

import harness  # noqa: E402
import pages_at_scale  # noqa: E402  (after the environment above)

TARGET_P95_MS = 50.0


def drive(base: str, token: str, paths: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """Request ``paths`` round-robin over ``clients`` keep-alive connections for ``seconds``.

    The client of ``pages_at_scale.py`` (one asyncio loop on raw sockets, which costs the shared
    cores less than a thread per connection would), sending the token instead of a session."""
    return asyncio.run(_drive(base, token, paths, clients, seconds))


async def _drive(base: str, token: str, paths: list[str], clients: int, seconds: float) -> dict[str, Any]:
    host, port = base.split(":")
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        for path in paths
    ]

    async def client(offset: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        i = offset
        while time.perf_counter() < stop_at:
            path = paths[i % len(paths)]
            request = requests[i % len(paths)]
            i += 1
            started = time.perf_counter()
            try:
                writer.write(request)
                status = await pages_at_scale._read_response(reader)
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
    return {
        "latencies": latencies,
        "elapsed": time.perf_counter() - started,
        "client_cpu": time.process_time() - cpu,
        "errors": errors[:3],
        "error_count": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rebuild", action="store_true", help="build the tenant again")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full tenant size")
    parser.add_argument("--clients", type=int, default=16)
    harness.add_server_argument(parser)
    parser.add_argument("--seconds", type=float, default=10.0, help="load time per endpoint")
    parser.add_argument(
        "--import-files", type=int, default=10_000, help="files of the import comparison (0: skip)"
    )
    parser.add_argument("--skip-lists", action="store_true", help="only the import comparison")
    parser.add_argument("--drive", nargs=2, metavar=("HOST:PORT", "TOKEN"), help=argparse.SUPPRESS)
    parser.add_argument("--paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        json.dump(drive(args.drive[0], args.drive[1], args.paths, args.clients, args.seconds), sys.stdout)
        return
    measure(args)


def _token(person: Any, name: str) -> str:
    from api import tokens
    from api.models import ApiToken
    from portal.audit import Actor

    ApiToken.objects.filter(user=person, name=name).delete()
    _, secret = tokens.token_create(Actor.for_user(person), user=person, name=name, days=1)
    return secret


def measure(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from directory.models import DirectoryUser
    from profiles.models import Profile

    if connection.vendor != "postgresql":
        sys.exit("Run this against PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    pages_at_scale.build(args.scale, args.rebuild)
    tokens = {
        "admin": _token(pages_at_scale._admin(), "bench"),
        "help desk": _token(pages_at_scale._help_desk(), "bench"),
    }

    rng = random.Random(5)
    upns = list(
        DirectoryUser.objects.filter(certificates__isnull=False)
        .order_by("pk")
        .values_list("upn", flat=True)[:5000]
    )
    sample = rng.sample(upns, 32)
    from portal import access

    profile = access.scoped(Profile.objects.order_by("pk"), pages_at_scale._help_desk()).first()
    client = Client()
    first = client.get(
        "/api/v1/certificates?limit=100",
        headers={"Authorization": f"Bearer {tokens['admin']}"},
        HTTP_HOST="localhost",
    ).json()
    middle = first["next_cursor"]
    endpoints: list[tuple[str, list[str]]] = [
        (
            "GET /certificates (pages)",
            ["/api/v1/certificates?limit=100", f"/api/v1/certificates?limit=100&cursor={middle}"],
        ),
        ("GET /certificates?upn=", [f"/api/v1/certificates?upn={u}" for u in sample]),
        (
            "GET /certificates (filters)",
            [
                "/api/v1/certificates?purpose=smimeSigning&limit=100",
                "/api/v1/certificates?expires_within_days=30&limit=100",
                "/api/v1/certificates?state=failed&limit=100",
                "/api/v1/certificates?state=expired&limit=100",
            ],
        ),
        ("GET /users/{upn}", [f"/api/v1/users/{u}" for u in sample]),
        ("GET /imports", ["/api/v1/imports?limit=100"]),
        (
            "GET /audit-events",
            ["/api/v1/audit-events?limit=100", "/api/v1/audit-events?category=Certificates&limit=100"],
        ),
        ("GET /profiles", ["/api/v1/profiles"]),
        ("GET /profiles/{code}", [f"/api/v1/profiles/{profile.code}"] if profile else ["/api/v1/profiles"]),
        ("GET /encryption-keys", ["/api/v1/encryption-keys"]),
        ("GET /connectors", ["/api/v1/connectors"]),
    ]
    runs = [
        (f"{name}{'' if who == 'admin' else ' (help desk)'}", who, paths)
        for who in tokens
        for name, paths in endpoints
    ]

    print(
        "\nQueries per request (several requests each; the same count means it does not grow with the data):"
    )
    for name, who, paths in runs:
        counts = []
        for path in (paths * 5)[:5]:
            with CaptureQueriesContext(connection) as queries:
                response = client.get(
                    path, headers={"Authorization": f"Bearer {tokens[who]}"}, HTTP_HOST="localhost"
                )
            if response.status_code != 200:
                sys.exit(f"{path} answered {response.status_code}: {response.content[:300]!r}")
            counts.append(len(queries))
        print(f"  {name:<44} {counts}")

    if args.skip_lists:
        compare_imports(args.import_files, tokens["admin"])
        return
    port = harness.free_port()
    env = {**os.environ, "ALLOWED_HOSTS": "localhost,127.0.0.1"}
    server = harness.serve(args.server, port, workers=2, threads=4, env=env, cwd=ROOT)
    try:
        harness.wait_http(port)
        print(
            f"\n{args.server} 2 workers x 4 threads, {args.clients} clients from a separate process, "
            f"{args.seconds:.0f} s per endpoint (target p95 < {TARGET_P95_MS:.0f} ms)"
        )
        print(
            f"  {'endpoint':<44} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>7}"
            f" {'server CPU ms/req':>18} {'client':>7}"
        )
        for name, who, paths in [("Baseline: /healthz", "admin", ["/healthz"]), *runs]:
            _load(port, tokens[who], paths, args.clients, 2.0)
            server_cpu = harness.tree_cpu(server.pid)
            result = _load(port, tokens[who], paths, args.clients, args.seconds)
            server_cpu = harness.tree_cpu(server.pid) - server_cpu
            lat = result["latencies"]
            if not lat:
                print(f"  {name:<44} no answers: {result['errors']}")
                continue
            p95 = harness.percentile(lat, 0.95)
            print(
                f"  {name:<44} {statistics.median(lat) * 1000:8.1f} {p95:8.1f} "
                f"{harness.percentile(lat, 0.99):8.1f} {len(lat) / result['elapsed']:8.1f} "
                f"{result['error_count']:7d} {server_cpu / len(lat) * 1000:18.2f} "
                f"{result['client_cpu'] / len(lat) * 1000:7.2f}{'' if p95 < TARGET_P95_MS else '  over target'}"
            )
            if result["errors"]:
                print(f"    first errors: {result['errors']}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    if args.import_files:
        compare_imports(args.import_files, tokens["admin"])


def _load(port: int, token: str, paths: list[str], clients: int, seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--drive",
            f"127.0.0.1:{port}",
            token,
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


# --- API import next to the web import -----------------------------------------------------------


def _import_set(count: int, offset: int) -> tuple[bytes, bytes]:
    """A ZIP of ``count`` PFX files of existing users (one key, as a CA's batch) and its manifest."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    from directory.models import DirectoryUser

    upns = list(DirectoryUser.objects.order_by("-pk").values_list("upn", flat=True)[offset : offset + count])
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    archive = io.BytesIO()
    manifest = io.StringIO()
    writer = csv.writer(manifest, lineterminator="\r\n")
    writer.writerow(["filename", "upn", "password", "purpose"])
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        for n, upn in enumerate(upns):
            # A key pair per user (one key held by two users is refused), EC so that making them is quick.
            key = ec.generate_private_key(ec.SECP256R1())
            cert = (
                x509.CertificateBuilder()
                .subject_name(
                    x509.Name(
                        [
                            x509.NameAttribute(NameOID.COMMON_NAME, upn),
                            x509.NameAttribute(NameOID.EMAIL_ADDRESS, upn),
                        ]
                    )
                )
                .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench CA")]))
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=365))
                .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(upn)]), critical=False)
                .sign(ca_key, hashes.SHA256())
            )
            password = f"Bench-{n}"
            data = pkcs12.serialize_key_and_certificates(
                None, key, cert, None, serialization.BestAvailableEncryption(password.encode())
            )
            out.writestr(f"u{n}.pfx", data)
            writer.writerow([f"u{n}.pfx", upn, password, "smimeSigning"])
    return archive.getvalue(), manifest.getvalue().encode()


def compare_imports(count: int, token: str) -> None:
    from django.conf import settings
    from django.test import Client

    from certs import pipeline
    from certs.models import EncryptionKey, ImportBatch

    print(
        f"\nImport of {count:,} files (one ZIP and its manifest), processed by the pipeline in this process:"
    )
    admin = pages_at_scale._admin()
    key = EncryptionKey.objects.get(key_name="bench-key")

    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    # Each import gets files of its own users: both store new certificates, neither updates the other's.
    for n, label in enumerate(("API POST /api/v1/imports", "web bulk upload page")):
        zipped, manifest = _import_set(count, n * count)
        started = time.perf_counter()
        if label.startswith("API"):
            response = Client().post(
                "/api/v1/imports",
                {
                    "manifest_file": _named(manifest, "manifest.csv"),
                    "files": _named(zipped, "files.zip"),
                    "encryption_key": str(key.code),
                    "on_duplicate": "skip",
                },
                headers={"Authorization": f"Bearer {token}"},
                HTTP_HOST="localhost",
            )
            code = response.json().get("code")
        else:
            web = Client()
            web.force_login(admin)
            response = web.post(
                "/certificates/import/bulk/",
                {
                    "manifest": _named(manifest, "manifest.csv"),
                    "pfx_files": _named(zipped, "files.zip"),
                    "key": key.pk,
                    "on_duplicate": "skip",
                },
                HTTP_HOST="localhost",
            )
            code = str(response.get("Location", "")).rstrip("/").split("/")[-1]
        accepted = time.perf_counter() - started
        batch = ImportBatch.objects.get(code=code)
        ids = list(batch.items.order_by("position").values_list("pk", flat=True))
        for start in range(0, len(ids), pipeline.CHUNK_SIZE):
            pipeline.process_chunk(batch.pk, ids[start : start + pipeline.CHUNK_SIZE])
        total = time.perf_counter() - started
        batch.refresh_from_db()
        print(
            f"  {label:<28} accepted in {accepted:6.1f} s, done in {total:6.1f} s: "
            f"{count / total:7.0f} files/s (state {batch.state}, {batch.items.filter(state='stored').count():,} stored)"
        )


def _named(data: bytes, name: str) -> io.BytesIO:
    buffer = io.BytesIO(data)
    buffer.name = name
    return buffer


if __name__ == "__main__":
    main()

"""Bulk import end to end through real Celery workers, against the PFX engine alone on the same files.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pfx_bench REDIS_URL=redis://127.0.0.1:6379/1 \\
        .venv/bin/python benchmarks/import_pipeline.py [--files 10000] [--workers 2]

Makes N OpenSSL-default RSA-2048 PFX files (PBES2 AES-256-CBC, PBKDF2/MAC SHA-256, 2048
iterations; each with its own certificate, user and key, the keys made from a pool of primes
because key generation is slow and does not change the work per file), then:

1. engine: inspect + OAEP-encrypt every file in this process, one core -> files/s;
2. end to end: start ``--workers`` worker processes, create the batch as the bulk page
   does (staging every password, storing every file), and wait until the workers have
   validated, encrypted and stored every certificate -> files/s.

Prints both rates and end-to-end / (engine x workers). The target is >= 0.60. ``--repeat N``
runs N rounds (engine, then end to end) and prints the median and spread. The machine may be
shared: give the benchmark a Redis database of its own (other workers on the same queue would
take its tasks).

``--dry-run-path`` measures instead, in this one process and per CPU-second (so other load on a
shared machine does not count), what a dry run costs: the bulk page reading the ZIP and manifest
and creating the batch (passwords staged, items stored), then each chunk processed as a worker
does it (claimed, passwords unstaged, validated, results written). Beside it, in the same run:
the engine alone (inspect + OAEP) and the plain library loop (``load_key_and_certificates``) on
the same files. Targets: dry-run path >= 700 files/s, engine >= 800 files/s per core. No workers
or broker are needed. On PostgreSQL the database server's CPU for the run is printed too.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
import uuid
import zipfile
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# Measured as deployed: with DEBUG on, Django records every query in memory (workers included).
os.environ.setdefault("DEBUG", "false")

import django

django.setup()

from asn1crypto import core  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from certs import imports, manifest, pipeline  # noqa: E402
from certs.keys import key_add  # noqa: E402
from certs.models import Certificate, EncryptionKey, ImportBatch, ImportItem, ItemState  # noqa: E402
from certs.pfx import encrypt_password, inspect_pfx, load_public_key  # noqa: E402
from devtools.certificates import UPN_OID, distinct_keys, openssl3_encryption  # noqa: E402
from directory.models import DirectoryUser  # noqa: E402
from portal.audit import Actor  # noqa: E402
from portal.celery import app  # noqa: E402
from portal.models import ScopeTag  # noqa: E402
from portal.tasks import HEARTBEAT_KEY, heartbeat  # noqa: E402

DOMAIN = "bench.example"
CACHE = Path(settings.DATA_DIR) / "bench-import"


def _make_batch(args: tuple[int, int]) -> list[tuple[str, bytes, str]]:
    start, stop = args
    now = datetime.now(UTC)
    ca = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # A key pair belongs to one user: the pipeline refuses a key another user's certificate holds.
    keys = distinct_keys()
    out = []
    for i in range(start, stop):
        upn = f"user{i:05d}@{DOMAIN}"
        password = f"Bench-{i:05d}-{uuid.uuid4().hex[:8]}"
        key = next(keys)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"User {i}")]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench Issuing CA")]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.RFC822Name(upn), x509.OtherName(UPN_OID, core.UTF8String(upn).dump())]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .sign(ca, hashes.SHA256())
        )
        encryption = openssl3_encryption(password)
        out.append(
            (upn, pkcs12.serialize_key_and_certificates(b"user", key, cert, None, encryption), password)
        )
    return out


def make_files(n: int) -> list[tuple[str, bytes, str]]:
    CACHE.mkdir(parents=True, exist_ok=True)
    cached = CACHE / f"{n}-own-keys.bin"
    if cached.exists():
        import pickle

        return list(pickle.loads(cached.read_bytes()))
    step = max(1, n // 8)
    with ProcessPoolExecutor() as pool:
        parts = pool.map(_make_batch, [(s, min(n, s + step)) for s in range(0, n, step)])
        files = [f for part in parts for f in part]
    import pickle

    cached.write_bytes(pickle.dumps(files))
    return files


def engine_rate(files: list[tuple[str, bytes, str]], public: rsa.RSAPublicKey) -> float:
    start, cpu = time.perf_counter(), time.process_time()
    for upn, data, password in files:
        inspection = inspect_pfx(data, password, upn=upn, purpose="smimeEncryption", public_key=public)
        assert inspection.ok, inspection.problems
        encrypt_password(password, public, "oaepSha512")
    print(f"engine CPU: {(time.process_time() - cpu) / len(files) * 1e3:.2f} ms per file")
    return len(files) / (time.perf_counter() - start)


def start_workers(count: int) -> subprocess.Popen[bytes]:
    app.control.purge()
    argv = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "prefork"]
    argv += ["--concurrency", str(count), "--loglevel", "WARNING", "-n", f"bench-{uuid.uuid4().hex[:6]}@%h"]
    argv += ["--without-gossip", "--without-mingle", "--prefetch-multiplier", "1"]
    # Quiet workers: a line per task would bury the figures.
    proc = subprocess.Popen(argv, cwd=settings.BASE_DIR, env={**os.environ, "LOG_LEVEL": "WARNING"})
    cache.delete(HEARTBEAT_KEY)
    heartbeat.delay()
    deadline = time.monotonic() + 60
    while cache.get(HEARTBEAT_KEY) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the workers did not start")
        time.sleep(0.2)
    return proc


def end_to_end(files: list[tuple[str, bytes, str]], key: EncryptionKey, workers: int) -> float:
    """Create the batch as the bulk page does and wait for fresh workers to finish it -> files/s."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = start_workers(workers)
    try:
        entries = [
            imports.Entry(f"{upn}.pfx", data, password, upn, "smimeEncryption")
            for upn, data, password in files
        ]
        start = time.perf_counter()
        batch = imports.batch_create(
            Actor.system("benchmark"),
            kind=ImportBatch.Kind.BULK,
            key=key,
            entries=entries,
            tags=[ScopeTag.default()],
        )
        staged = time.perf_counter()
        while ImportBatch.objects.filter(pk=batch.pk, state=ImportBatch.State.RUNNING).exists():
            time.sleep(0.05)
        end = time.perf_counter()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    # Contention-free view: CPU the worker processes spent (start-up included) per file.
    print(f"worker CPU: {cpu:.2f} s in all, {cpu / len(files) * 1e3:.2f} ms per file (start-up included)")
    counts = imports.batch_counts(batch)
    assert counts["stored"] == len(files), counts
    print(f"batch created (staging + rows): {staged - start:6.2f} s; end to end in {end - start:.2f} s")
    return len(files) / (end - start)


def library_rate(files: list[tuple[str, bytes, str]]) -> float:
    """The plain library loop: ``load_key_and_certificates`` on each file -> files per CPU-second."""
    cpu = time.process_time()
    for _, data, password in files:
        key, cert, _ = pkcs12.load_key_and_certificates(data, password.encode())
        assert key is not None and cert is not None
    return len(files) / (time.process_time() - cpu)


def engine_cpu_rate(files: list[tuple[str, bytes, str]], public: rsa.RSAPublicKey) -> float:
    """inspect + OAEP-encrypt each file -> files per CPU-second."""
    cpu = time.process_time()
    for upn, data, password in files:
        inspection = inspect_pfx(data, password, upn=upn, purpose="smimeEncryption", public_key=public)
        assert inspection.ok, inspection.problems
        encrypt_password(password, public, "oaepSha512")
    return len(files) / (time.process_time() - cpu)


def upload(files: list[tuple[str, bytes, str]]) -> tuple[bytes, bytes]:
    """The ZIP and the manifest an admin would upload for these files."""
    archive = io.BytesIO()
    lines = ["filename,upn,password,purpose"]
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for upn, data, password in files:
            name = f"{upn.split('@')[0]}.pfx"
            z.writestr(name, data)
            lines.append(f"{name},{upn},{password},smimeEncryption")
    return archive.getvalue(), ("\r\n".join(lines) + "\r\n").encode()


def _backend_cpu() -> float:
    """CPU seconds the database server process of this connection has used (PostgreSQL on this host)."""
    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dry_run_path(files: list[tuple[str, bytes, str]], key: EncryptionKey) -> dict[str, float]:
    """A dry run of these files, as the bulk page and the workers do it, in this process.

    Returns CPU seconds per stage (this process), and the database server's CPU on PostgreSQL.
    """
    data, csv = upload(files)
    connection.ensure_connection()
    stages: dict[str, float] = {}
    backend, cpu, wall = _backend_cpu(), time.process_time(), time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal cpu
        now = time.process_time()
        stages[stage] = now - cpu
        cpu = now

    entries = manifest.entries(manifest.read_manifest(csv), manifest.read_zip(data))
    lap("manifest (read ZIP and CSV, match rows)")
    batch = imports.batch_create(
        Actor.system("benchmark"),
        kind=ImportBatch.Kind.BULK,
        key=key,
        entries=entries,
        tags=[ScopeTag.default()],
        dry_run=True,
        enqueue=False,
    )
    lap("staging (batch created, passwords sealed)")
    ids = list(ImportItem.objects.filter(batch=batch).order_by("position").values_list("pk", flat=True))
    for start in range(0, len(ids), pipeline.CHUNK_SIZE):
        pipeline.process_chunk(batch.pk, ids[start : start + pipeline.CHUNK_SIZE])
    lap("validation and results (chunks as a worker runs them)")
    stages["wall"] = time.perf_counter() - wall
    stages["database server"] = _backend_cpu() - backend
    validated = ImportItem.objects.filter(batch=batch, state=ItemState.VALIDATED).count()
    assert validated == len(files), imports.batch_counts(batch)
    return stages


def main_dry_run(
    files: list[tuple[str, bytes, str]],
    key: EncryptionKey,
    public: rsa.RSAPublicKey,
    args: argparse.Namespace,
) -> None:
    sample = files[: args.library_sample]
    rounds: list[dict[str, float]] = []
    for round_no in range(1, args.repeat + 1):
        figures = {"library loop": library_rate(sample), "engine": engine_cpu_rate(files, public)}
        stages = dry_run_path(files, key)
        cpu = sum(v for k, v in stages.items() if k not in ("wall", "database server"))
        figures["dry-run path"] = len(files) / cpu
        if stages["database server"]:
            figures["dry-run path, database server CPU included"] = len(files) / (
                cpu + stages["database server"]
            )
        print(f"round {round_no}:")
        for stage, seconds in stages.items():
            print(f"  {stage:55s} {seconds:7.2f} s  {seconds / len(files) * 1e3:6.3f} ms/file")
        for label, value in figures.items():
            print(f"  {label:55s} {value:7.1f} files per CPU-second")
        rounds.append(figures)
        reset()
        DirectoryUser.objects.bulk_create(
            [DirectoryUser(upn=upn, display_name=upn.split("@")[0], mail=upn) for upn, _, _ in files],
            batch_size=1000,
        )
    targets = {"engine": 800, "dry-run path": 700}
    print(f"{len(files)} files (library loop on {len(sample)}), chunks of {pipeline.CHUNK_SIZE}, one process")
    for label in rounds[0]:
        values = sorted(r[label] for r in rounds)
        target = targets.get(label)
        verdict = (
            ""
            if target is None
            else f"  target >= {target}: {'MET' if statistics.median(values) >= target else 'NOT MET'}"
        )
        print(
            f"{label}: median {statistics.median(values):.1f}, min {values[0]:.1f}, max {values[-1]:.1f} files per CPU-second"
            f" ({len(values)} rounds){verdict}"
        )


def reset() -> None:
    Certificate.objects.filter(upn__endswith=DOMAIN).delete()
    ImportBatch.objects.filter(created_by_name="benchmark").delete()
    DirectoryUser.objects.filter(upn__endswith=DOMAIN).delete()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of engine + end to end (spread)")
    parser.add_argument(
        "--dry-run-path", action="store_true", help="the dry-run path per CPU-second, no workers"
    )
    parser.add_argument("--library-sample", type=int, default=200, help="files the library loop opens")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    print(
        f"database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, broker {settings.CELERY_BROKER_URL.split(':')[0]}"
    )
    files = make_files(args.files)
    reset()
    connector = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = connector.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = EncryptionKey.objects.filter(key_name="BenchKey").first()
    if key is not None:
        Certificate.objects.filter(encryption_key=key).delete()
        ImportBatch.objects.filter(encryption_key=key).delete()
        key.delete()
    key = key_add(
        Actor.system("benchmark"),
        data=pem,
        provider_name="Bench KSP",
        key_name="BenchKey",
        default_padding="oaepSha512",
        make_default=False,
        tags=[ScopeTag.default()],
    )
    if args.dry_run_path:
        DirectoryUser.objects.bulk_create(
            [DirectoryUser(upn=upn, display_name=upn.split("@")[0], mail=upn) for upn, _, _ in files],
            batch_size=1000,
        )
        main_dry_run(files, key, load_public_key(pem), args)
        reset()
        return
    rounds = []
    for round_no in range(1, args.repeat + 1):
        DirectoryUser.objects.bulk_create(
            [DirectoryUser(upn=upn, display_name=upn.split("@")[0], mail=upn) for upn, _, _ in files],
            batch_size=1000,
        )
        engine = engine_rate(files, load_public_key(pem))
        print(f"round {round_no}: engine only (1 process): {engine:8.1f} files/s")
        e2e = end_to_end(files, key, args.workers)
        ratio = e2e / (engine * args.workers)
        print(f"round {round_no}: end to end ({len(files)} files): {e2e:8.1f} files/s")
        print(
            f"round {round_no}: ratio end to end / (engine x {args.workers}): {ratio:.2f}  (target >= 0.60)"
        )
        rounds.append((engine, e2e, ratio))
        reset()
    print(f"workers: {args.workers} processes, chunks of {pipeline.CHUNK_SIZE}, {len(files)} files")
    for label, index in (("engine only (1 process), files/s", 0), ("end to end, files/s", 1), ("ratio", 2)):
        values = sorted(r[index] for r in rounds)
        print(
            f"{label}: median {statistics.median(values):.2f}, min {values[0]:.2f}, max {values[-1]:.2f}"
            f" ({len(values)} rounds)"
        )


if __name__ == "__main__":
    main()

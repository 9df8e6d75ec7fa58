"""How long a bulk import takes to recover after its worker is killed with kill -9.

    PORTAL_DATA_DIR=/tmp/recovery DATABASE_URL=sqlite:////tmp/recovery/db.sqlite3 \\
        .venv/bin/python benchmarks/import_recovery.py [--files 100] [--kill worker|child]

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pfx_recovery REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python benchmarks/import_recovery.py

Migrates the database it is given, makes ``--files`` PFX files (each for its own directory user,
with enough key-derivation rounds that the chunk takes a few seconds), starts one Celery worker
and Celery beat with the settings as they are (``CERTS_CLAIM_LEASE_SECONDS``, the beat schedule),
creates the batch, and kills the worker's whole process group (``--kill worker``; a new worker is
started at once) or its pool child (``--kill child``) with SIGKILL as soon as it holds the rows.
Then it waits until every row has finished and prints the seconds from the kill to the last row,
the rows' states, the certificates stored and how often each row's result was written. Give it a
database, broker folder or Redis database of its own: other workers would take its tasks.

With the defaults (lease 420 s, sweep every 60 s) the rows are queued again 420 to 480 s after
the kill and finished a few seconds later: 100 rows took 440-496 s on SQLite with the file
broker and on PostgreSQL with Redis, whole worker or pool child killed, each row written once.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "false")

import django

django.setup()

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from certs import imports  # noqa: E402
from certs.keys import key_add  # noqa: E402
from certs.models import Certificate, EncryptionKey, ImportBatch, ImportItem  # noqa: E402
from directory.models import DirectoryUser  # noqa: E402
from portal.audit import Actor  # noqa: E402
from portal.celery import app  # noqa: E402
from portal.models import ScopeTag  # noqa: E402

ROUNDS = 200_000  # about 60 ms a file: the kill lands while the worker holds the chunk


def _pfx(upn: str, password: str, ca: ec.EllipticCurvePrivateKey) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = timezone.now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, upn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Recovery Test CA")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(upn)]), critical=False)
        .sign(ca, hashes.SHA256())
    )
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(b"user", key, cert, None, encryption)


def _key() -> EncryptionKey:
    from cryptography.hazmat.primitives.asymmetric import rsa

    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key_add(
        Actor.system(),
        data=pem,
        provider_name="Recovery",
        key_name=f"key-{uuid.uuid4().hex[:8]}",
        default_padding="oaepSha512",
        make_default=True,
        tags=[ScopeTag.default()],
    )


def _start(*argv: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "celery", "-A", "portal", *argv, "--loglevel", "WARNING"]
    return subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, start_new_session=True)


def _worker() -> subprocess.Popen[bytes]:
    name = f"recovery-{uuid.uuid4().hex[:8]}@%h"
    return _start("worker", "--pool", "prefork", "--concurrency", "1", "-n", name, "--without-gossip")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGQUIT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--kill", choices=("worker", "child"), default="worker")
    parser.add_argument("--timeout", type=int, default=1800, help="give up after this many seconds")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        app.control.purge()
    print(
        f"lease {settings.CERTS_CLAIM_LEASE_SECONDS} s, "
        f"database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
        f"broker {settings.CELERY_BROKER_URL.split(':', 1)[0]}"
    )
    ca = ec.generate_private_key(ec.SECP256R1())
    run = uuid.uuid4().hex[:6]
    entries = []
    for i in range(args.files):
        upn = f"r{run}-{i:04d}@recovery.example"
        DirectoryUser.objects.create(upn=upn, display_name=upn, mail=upn)
        entries.append(imports.Entry(f"{upn}.pfx", _pfx(upn, f"Pw-{i}", ca), f"Pw-{i}", upn))

    beat = _start("beat", "-s", str(Path(settings.DATA_DIR) / f"recovery-beat-{run}"))
    workers = [_worker()]
    try:
        batch = imports.batch_create(
            Actor.system(), kind=ImportBatch.Kind.BULK, key=_key(), entries=entries, tags=[ScopeTag.default()]
        )
        rows = ImportItem.objects.filter(batch=batch)
        while not rows.filter(claim__isnull=False, done=False).exists():
            time.sleep(0.05)
        if args.kill == "worker":
            os.killpg(workers[0].pid, signal.SIGKILL)
            workers[0].wait()
            killed = time.monotonic()
            workers.append(_worker())
        else:
            os.kill(_children(workers[0].pid)[0], signal.SIGKILL)
            killed = time.monotonic()
        held = rows.filter(claim__isnull=False, done=False).count()
        print(f"killed the {args.kill} holding {held} of {args.files} rows")
        last = None
        while rows.filter(done=False).exists():
            if time.monotonic() - killed > args.timeout:
                print(
                    f"gave up after {args.timeout} s: {dict(Counter(rows.values_list('state', flat=True)))}"
                )
                return 1
            minute = int(time.monotonic() - killed) // 60
            if minute != last:
                last = minute
                print(f"  {minute} min: {dict(Counter(rows.values_list('state', flat=True)))}")
            time.sleep(0.5)
        recovered = time.monotonic() - killed
        states = dict(Counter(rows.values_list("state", flat=True)))
        writes = dict(Counter(rows.values_list("attempts", flat=True)))
        stored = Certificate.objects.filter(batch=batch).count()
        print(f"every row finished {recovered:.0f} s after the kill: {states}")
        print(f"certificates stored {stored}, result writes per row {writes}")
        return 0 if stored == args.files and writes == {1: args.files} else 1
    finally:
        for proc in (*workers, beat):
            _stop(proc)


if __name__ == "__main__":
    sys.exit(main())

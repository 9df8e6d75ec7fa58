"""Uploads and profile writes to Intune through real Celery workers, paced by the shared write budget,
against the Graph emulator.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pfx_graph_bench REDIS_URL=redis://127.0.0.1:6379/3 \\
        .venv/bin/python benchmarks/graph_upload.py [--certificates 2000] [--profiles 40] [--workers 2] \\
        [--quota 20] [--window 2] [--faults 0.1]

The emulator (in this process, over HTTPS) answers 429 once more than ``--quota`` writes
arrive within ``--window`` seconds; the portal's write budget is set to the same figures.
``--workers`` worker processes upload ``--certificates`` certificates spread over the demo
tenant's users. Prints the achieved write rate (writes after the first window's burst,
over the time from first to last write), the quota, their
ratio (target >= 0.90), the 429s seen, and checks that Intune ends with exactly one record
per certificate and one deviceConfiguration per profile, and that no POST hit an existing record.
``--profiles`` PKCS imported certificate profiles (each a POST and an ``assign``) are written in
the same run and share the budget. ``--faults`` makes that share of writes fail at random: half
are answered 503 without being carried out, half are carried out and their answer is lost (502 or
504); the check for duplicates and losses then shows that nothing is sent twice blind. The ratio
is only meaningful without faults (a failed write waits for its task's retry).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# Measured as deployed: with DEBUG on, Django records every query in memory (workers included).
os.environ.setdefault("DEBUG", "false")

import django

django.setup()

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402

from certs.models import Certificate, EncryptionKey, GraphState  # noqa: E402
from devtools.emulator.server import Emulator  # noqa: E402
from devtools.emulator.state import Config  # noqa: E402
from directory.models import DirectoryUser  # noqa: E402
from graph import tasks, uploads  # noqa: E402
from graph.models import ProfileRecord, TenantConnection, UploadRecord  # noqa: E402
from portal.audit import Actor  # noqa: E402
from portal.celery import app  # noqa: E402
from portal.lib.workers import celery_worker_argv  # noqa: E402
from portal.tasks import HEARTBEAT_KEY, heartbeat  # noqa: E402
from profiles import services as profile_services  # noqa: E402
from profiles.models import Profile  # noqa: E402

KEY_NAME = "BenchGraphKey"


def make_certificates(emulator: Emulator, count: int) -> list[int]:
    """``count`` certificates (one EC key, a new certificate each) spread over the tenant's users."""
    key = EncryptionKey.objects.filter(key_name=KEY_NAME).first()
    if key is not None:
        Certificate.objects.filter(encryption_key=key).delete()
        key.delete()
    key = EncryptionKey.objects.create(
        provider_name="Bench KSP",
        key_name=KEY_NAME,
        size=2048,
        fingerprint=uuid.uuid4().hex,
        public_key_pem="-",
    )
    users = []
    for item in emulator.state.users.values():
        user, _ = DirectoryUser.objects.update_or_create(
            object_id=uuid.UUID(item["id"]),
            defaults={
                "upn": item["userPrincipalName"],
                "display_name": item["displayName"],
                "removed_at": None,
            },
        )
        users.append(user)
    private = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i in range(count):
        user = users[i % len(users)]
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Benchmark certificate {i}")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(private, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        rows.append(
            Certificate(
                user=user,
                upn=user.upn,
                thumbprint=hashlib.sha1(der, usedforsecurity=False).hexdigest(),
                purpose="smimeEncryption",
                subject=user.upn,
                issuer=user.upn,
                serial=str(cert.serial_number),
                not_before=now,
                not_after=now + dt.timedelta(days=365),
                key_type="ec",
                encryption_key=key,
                padding="oaepSha512",
                pfx_blob=pkcs12.serialize_key_and_certificates(
                    None, private, cert, None, serialization.NoEncryption()
                ),
                encrypted_password=os.urandom(256),
            )
        )
    return [c.pk for c in Certificate.objects.bulk_create(rows, batch_size=500)]


def make_profiles(count: int) -> list[int]:
    """``count`` iOS profiles for all users, stored before the tenant is connected (so none is sent yet)."""
    Profile.objects.filter(name__startswith="Bench profile ").delete()
    ProfileRecord.objects.all().delete()
    for n in range(count):
        profile_services.profile_create(
            actor=Actor.system("benchmark"),
            draft=profile_services.ProfileDraft(
                platform="iOS", name=f"Bench profile {n}", intended_purpose="smimeEncryption", all_users=True
            ),
        )
    return list(ProfileRecord.objects.values_list("pk", flat=True))


def start_workers(count: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
    app.control.purge()
    cache.delete(HEARTBEAT_KEY)
    procs = []
    for n in range(count):
        argv = celery_worker_argv(f"bench{n}", concurrency=concurrency)
        procs.append(
            subprocess.Popen(argv, cwd=settings.BASE_DIR, env={**os.environ, "LOG_LEVEL": "WARNING"})
        )
    heartbeat.delay()
    deadline = time.monotonic() + 60
    while cache.get(HEARTBEAT_KEY) is None:
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not start")
        time.sleep(0.2)
    return procs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--certificates", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2, help="Pool processes per worker.")
    parser.add_argument("--quota", type=int, default=20, help="Writes the emulator allows per window.")
    parser.add_argument("--window", type=float, default=2.0, help="Seconds.")
    parser.add_argument("--profiles", type=int, default=40, help="Profiles written in the same run.")
    parser.add_argument("--faults", type=float, default=0.0, help="Share of writes that fail at random.")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(
        f"database {db}, broker {settings.CELERY_BROKER_URL.split(':')[0]} (poll {settings.CELERY_BROKER_TRANSPORT_OPTIONS.get('polling_interval', '-')} s), budget {'redis' if settings.REDIS_URL else 'file'}"
    )
    emulator = Emulator(
        tls_dir=Path(settings.DATA_DIR) / "bench-graph",
        config=Config(
            write_limit=args.quota, write_window=args.window, page_size=100, fault_rate=args.faults
        ),
    ).start()
    UploadRecord.objects.all().delete()
    TenantConnection.objects.all().delete()
    ids = make_certificates(emulator, args.certificates)
    profile_records = make_profiles(args.profiles)
    emulator.connect_portal(
        Actor.system("benchmark"), write_limit=args.quota, write_window_seconds=args.window
    )
    workers = start_workers(args.workers, args.concurrency)
    try:
        start = time.perf_counter()
        uploads.queue_uploads(ids)
        for pk in profile_records:
            tasks.push_profile.delay(pk)
        queued = time.perf_counter()
        pending = Certificate.objects.filter(pk__in=ids).exclude(
            graph_state__in=[GraphState.SYNCED, GraphState.FAILED]
        )
        pending_profiles = ProfileRecord.objects.exclude(
            state__in=[ProfileRecord.State.SYNCED, ProfileRecord.State.FAILED]
        )
        while pending.exists() or pending_profiles.exists():
            time.sleep(0.5)
        end = time.perf_counter()
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=60)
    stats = emulator.state.stats
    synced = Certificate.objects.filter(pk__in=ids, graph_state=GraphState.SYNCED).count()
    profiles_synced = ProfileRecord.objects.filter(state=ProfileRecord.State.SYNCED).count()
    # The first window's burst is free; count only the writes paced after it.
    sustained = (stats.writes - args.quota) / (stats.last_write - stats.first_write)
    quota = args.quota / args.window
    print(
        f"certificates {len(ids)}, profiles {args.profiles}, workers {args.workers} x {args.concurrency}, "
        f"quota {args.quota} writes / {args.window:g} s, faults {args.faults:g}"
    )
    print(
        f"queued in {queued - start:.1f} s; all done in {end - start:.1f} s (end to end {len(ids) / (end - start):.2f}/s)"
    )
    print(
        f"achieved {sustained:.2f} writes/s (paced, after the first burst), quota {quota:.2f} writes/s, ratio {sustained / quota:.3f}"
    )
    print(
        f"429 answers {stats.throttled}, POSTs {stats.posts}, created {stats.creates}, conflicts {stats.conflicts}"
    )
    print(
        f"writes {stats.writes} (certificate POSTs {stats.posts}, PATCHes {stats.patches}; profile POSTs "
        f"{stats.profile_creates}, PATCHes {stats.profile_patches}, assigns {stats.assigns}); "
        f"faults: refused {stats.refused_faults}, answers lost {stats.lost_answers}"
    )
    print(f"records in Intune {len(emulator.state.pfx)}, certificates synced {synced}")
    print(f"profiles in Intune {len(emulator.state.configurations)}, profiles synced {profiles_synced}")
    emulator.stop()
    TenantConnection.objects.all().delete()
    ok = (
        len(emulator.state.pfx) == synced == len(ids)
        and stats.conflicts == 0
        and stats.creates == len(ids)
        and len(emulator.state.configurations) == profiles_synced == args.profiles
        and stats.profile_creates == args.profiles
    )
    print("no duplicate, no lost record" if ok else "MISMATCH: duplicates or lost records")
    if not ok or (sustained / quota < 0.9 and not args.faults):
        raise SystemExit(1)


if __name__ == "__main__":
    main()

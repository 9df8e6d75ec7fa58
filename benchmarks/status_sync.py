"""The Intune status sync at 50 profiles and 150,000 device statuses, against the Graph emulator.

    createdb -h 127.0.0.1 -U postgres pfx_status_test
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pfx_status_test \\
        .venv/bin/python benchmarks/status_sync.py [--profiles 50] [--statuses 150000] [--page-size 100]

Builds ``--statuses`` directory devices, each reported by Intune for one of ``--profiles`` profiles
(a device status and a certificate state of one of a pool of stored certificates, a share in
Error, a few devices and certificates the portal does not know), in the emulator over HTTPS. The
emulator refuses reads beyond Intune's documented 1000 requests per 20 s per app and tenant
(docs/graph-endpoints.md) with 429, as Intune would. Runs the sync twice (the second must change
nothing) and prints for each: wall time, requests, requests/s beside the limit (50/s), 429s,
rows written, and that every page was read (rows = statuses reported, less the unknown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pfx_status_test")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from certs.models import Certificate, EncryptionKey  # noqa: E402
from delivery.models import DeliveryState, Source  # noqa: E402
from devtools.emulator.server import Emulator  # noqa: E402
from devtools.emulator.state import Config  # noqa: E402
from directory.models import Device, DirectoryUser, Platform  # noqa: E402
from graph import status_sync  # noqa: E402
from graph.models import IntuneProfileStatus, ProfileRecord, StatusSyncRun, TenantConnection  # noqa: E402
from portal.audit import Actor  # noqa: E402
from profiles.models import Profile  # noqa: E402

READ_LIMIT, READ_WINDOW = 1000, 20.0  # Intune device configuration, any request, per app and tenant
GRAPH_TYPE = "windows10ImportedPFXCertificateProfile"
CERTIFICATES = 2000


def build(emulator: Emulator, profiles: int, statuses: int) -> None:
    """The portal's side (devices, users, certificates, profiles in Intune) and Intune's reports."""
    DeliveryState.objects.all().delete()
    IntuneProfileStatus.objects.all().delete()
    StatusSyncRun.objects.all().delete()
    ProfileRecord.objects.all().delete()
    Profile.objects.filter(name__startswith="Bench status ").delete()
    Device.objects.filter(name__startswith="BENCH-").delete()
    Certificate.objects.filter(upn__startswith="bench-status-").delete()
    DirectoryUser.objects.filter(upn__startswith="bench-status-").delete()
    rng = random.Random(7)
    users = DirectoryUser.objects.bulk_create(
        [
            DirectoryUser(
                object_id=uuid.uuid4(), upn=f"bench-status-{n}@contoso.com", display_name=f"User {n}"
            )
            for n in range(max(statuses // 3 + 1, CERTIFICATES))
        ],
        batch_size=5000,
    )
    key, _ = EncryptionKey.objects.get_or_create(
        provider_name="Microsoft Software Key Storage Provider",
        key_name="BenchStatusKey",
        defaults={"size": 2048, "fingerprint": uuid.uuid4().hex, "public_key_pem": "-"},
    )
    now = timezone.now()
    certs = Certificate.objects.bulk_create(
        [
            Certificate(
                user=users[n],
                upn=users[n].upn,
                thumbprint=f"{n:040x}",
                purpose="smimeEncryption",
                subject=f"CN={users[n].upn}",
                issuer="CN=Contoso Issuing CA",
                serial=f"{n:x}",
                not_before=now,
                not_after=now + dt.timedelta(days=365),
                key_type="RSA",
                encryption_key=key,
                padding="oaepSha256",
                pfx_blob=b"-",
                encrypted_password=b"-",
            )
            for n in range(CERTIFICATES)
        ],
        batch_size=2000,
    )
    devices = Device.objects.bulk_create(
        [
            Device(
                device_id=uuid.uuid4(),
                name=f"BENCH-{n:06d}",
                platform=Platform.WINDOWS,
                primary_user=users[n // 3],
            )
            for n in range(statuses)
        ],
        batch_size=5000,
    )
    records = []
    for p in range(profiles):
        profile = Profile.objects.create(
            name=f"Bench status {p:02d}", platform=Platform.WINDOWS, intended_purpose="smimeEncryption"
        )
        records.append(
            ProfileRecord(
                profile=profile,
                name=profile.name,
                graph_type=GRAPH_TYPE,
                graph_id=str(uuid.uuid4()),
                state=ProfileRecord.State.SYNCED,
            )
        )
    ProfileRecord.objects.bulk_create(records)
    state = emulator.state
    with state.lock:
        state.devices = {}
        for device in devices:
            managed = str(uuid.uuid5(device.device_id, "managedDevice"))
            state.devices[managed] = {"id": managed, "azureADDeviceId": str(device.device_id)}
        managed_ids = list(state.devices)
        for record in records:
            state.configurations[record.graph_id] = {
                "@odata.type": f"#microsoft.graph.{GRAPH_TYPE}",
                "id": record.graph_id,
                "displayName": record.name,
                "version": 1,
            }
            state.device_statuses[record.graph_id] = []
            state.certificate_states[record.graph_id] = []
            state.user_statuses[record.graph_id] = []
        stamp = now.isoformat().replace("+00:00", "Z")
        for n in range(statuses):
            record = records[n % profiles]
            config = record.graph_id
            # One device in 500 is one the portal never heard of; one certificate in 500 too.
            managed = str(uuid.uuid4()) if n % 500 == 499 else managed_ids[n]
            failed = rng.random() < 0.05
            state.device_statuses[config].append(
                {
                    "id": f"{managed}_{config}_{users[n // 3].object_id}",
                    "deviceDisplayName": f"BENCH-{n:06d}",
                    "userPrincipalName": users[n // 3].upn,
                    "status": "error" if failed else "compliant",
                    "lastReportedDateTime": stamp,
                }
            )
            thumbprint = "f" * 40 if n % 500 == 250 else certs[n % CERTIFICATES].thumbprint
            state.certificate_states[config].append(
                {
                    "id": f"{managed}_{config}_{n}",
                    "certificateThumbprint": thumbprint.upper(),
                    "certificateSerialNumber": "1A",
                    "certificateIssuer": "CN=Contoso Issuing CA",
                    "certificateExpirationDateTime": stamp,
                    "certificateIssuanceState": "installFailed" if failed else "installed",
                    "certificateRevokeStatus": "none",
                }
            )
        for record in records:
            state.user_statuses[record.graph_id] = [
                {"id": f"u{n}", "userPrincipalName": f"u{n}", "status": "compliant"} for n in range(10)
            ]


class RecordingPacer(status_sync.Pacer):
    """The portal's pacer, keeping every request's time to find the busiest 20 s."""

    def __init__(self) -> None:
        super().__init__(settings.GRAPH_STATUS_READ_LIMIT, settings.GRAPH_STATUS_READ_WINDOW_SECONDS)
        self.times: list[float] = []

    def wait(self) -> None:
        super().wait()
        self.times.append(self.clock())

    def busiest(self, window: float) -> int:
        best, first = 0, 0
        for last, at in enumerate(self.times):
            while self.times[first] <= at - window:
                first += 1
            best = max(best, last - first + 1)
        return best


def measure(emulator: Emulator, label: str) -> StatusSyncRun:
    before = (emulator.state.stats.reads, emulator.state.stats.read_throttled)
    pacer = RecordingPacer()
    start = time.perf_counter()
    run = status_sync.run(pacer=pacer)
    took = time.perf_counter() - start
    reads = emulator.state.stats.reads - before[0]
    throttled = emulator.state.stats.read_throttled - before[1]
    assert run.state == StatusSyncRun.State.DONE, run.error
    limit = READ_LIMIT / READ_WINDOW
    print(
        f"{label}: {took:.1f} s, {reads} requests, {reads / took:.1f} requests/s "
        f"(Intune's limit {limit:.0f}/s, the portal's pace {settings.GRAPH_STATUS_READ_LIMIT / settings.GRAPH_STATUS_READ_WINDOW_SECONDS:.0f}/s), "
        f"busiest {READ_WINDOW:.0f} s: {pacer.busiest(READ_WINDOW)} requests (limit {READ_LIMIT}), "
        f"429s {throttled}; rows created {run.count('rows created')}, updated {run.count('rows updated')}, "
        f"removed {run.count('rows removed')}; unknown devices {run.count('unknown devices')}, "
        f"unknown certificates {run.count('unknown certificates')}"
    )
    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profiles", type=int, default=50)
    parser.add_argument("--statuses", type=int, default=150_000, help="Device statuses over all profiles.")
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    print(f"database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
    emulator = Emulator(
        tls_dir=Path(settings.DATA_DIR) / "bench-status",
        config=Config(page_size=args.page_size, read_limit=READ_LIMIT, read_window=READ_WINDOW),
        seed=False,
    ).start()
    try:
        TenantConnection.objects.all().delete()
        emulator.connect_portal(Actor.system("benchmark"))
        started = time.perf_counter()
        build(emulator, args.profiles, args.statuses)
        print(
            f"built {args.profiles} profiles, {args.statuses} device statuses and as many certificate states "
            f"in {time.perf_counter() - started:.1f} s (page size {args.page_size})"
        )
        first = measure(emulator, "first sync")
        rows = DeliveryState.objects.filter(source=Source.INTUNE).count()
        unknown_devices = args.statuses // 500
        expected = 2 * (args.statuses - unknown_devices) - first.count("unknown certificates")
        print(f"rows with source Intune: {rows} (expected {expected}: every page read)")
        assert rows == expected
        second = measure(emulator, "second sync (nothing changed in Intune)")
        assert (
            second.count("rows created") == second.count("rows updated") == second.count("rows removed") == 0
        )
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()

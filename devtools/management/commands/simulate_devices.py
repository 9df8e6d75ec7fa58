"""``manage.py simulate_devices --count N [--interval S] [--failure-rate R]``: a fleet of demo devices.

Each device is a real HTTP client of the device API with a key pair of its own: it enrols with
the demo tenant's enrolment secret, checks in every ``--interval`` seconds, decrypts and opens
every PFX it is sent, checks the thumbprint and reports; ``--failure-rate`` of installs fail.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from delivery.simulator import Api, DeviceApiError, SimulatedDevice, Stats, run_fleet
from devtools import devices
from devtools.production import refuse_in_production
from portal.lib import refusal


class Command(BaseCommand):
    help = "Run simulated managed devices that enrol, check in, install certificates and report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=12, help="Devices, spread over the six platforms.")
        parser.add_argument(
            "--interval", type=float, default=30.0, help="Seconds between a device's check-ins."
        )
        parser.add_argument(
            "--failure-rate", type=float, default=0.0, help="Share of installs that fail (0-1)."
        )
        parser.add_argument("--server", default="http://127.0.0.1:8000", help="The portal's URL.")
        parser.add_argument(
            "--duration", type=float, default=0.0, help="Stop after this many seconds (0: run on)."
        )
        parser.add_argument("--threads", type=int, default=4, help="Devices checking in at the same time.")
        parser.add_argument(
            "--fresh", action="store_true", help="New keys and enrolments, forgetting saved ones."
        )

    @refusal.stops_command
    def handle(self, *args: Any, **options: Any) -> None:
        refuse_in_production("The device simulator")
        if not 0 <= options["failure_rate"] <= 1:
            raise CommandError("--failure-rate is a share between 0 and 1.")
        specs = devices.pick(max(0, options["count"]))
        if not specs:
            raise CommandError("No device with a primary user in the directory: run seed_demo first.")
        secret = devices.enrolment_secret()
        api = Api(options["server"])
        folder = None if options["fresh"] else Path(settings.DATA_DIR) / "simulated-devices"
        state = devices.FleetState(folder)
        fleet = [state.device(api, spec, options["failure_rate"]) for spec in specs]
        for device in fleet:
            if not device.credential:
                self._enroll(device, secret)
                state.save(device)
        self.stdout.write(
            f"{len(fleet)} simulated devices enrolled at {options['server']} "
            f"({', '.join(sorted({d.spec.platform for d in fleet}))})."
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        started = time.monotonic()
        duration = options["duration"]

        def done() -> bool:
            return stop.is_set() or bool(duration and time.monotonic() - started >= duration)

        stats = Stats()

        def refused(device: SimulatedDevice, exc: Exception) -> None:
            if isinstance(exc, DeviceApiError) and exc.code in ("invalid_credential", "credential_revoked"):
                self._enroll(device, secret)
            elif isinstance(exc, DeviceApiError) and exc.code == "replayed_report":
                device.sequence = time.time_ns() // 1000
            self.stderr.write(f"{device.spec.name}: {exc}")

        saver = threading.Thread(target=self._save_periodically, args=(state, fleet, done), daemon=True)
        saver.start()
        run_fleet(
            fleet,
            interval=options["interval"],
            until=done,
            stats=stats,
            threads=options["threads"],
            on_error=refused,
        )
        for device in fleet:
            state.save(device)
        self.stdout.write(
            f"Check-ins {stats.check_ins}, installed {stats.installed}, failed {stats.failed}, "
            f"removed {stats.removed}, errors {stats.errors}."
        )

    def _enroll(self, device: SimulatedDevice, secret: str) -> None:
        try:
            device.enroll(secret=secret)
        except DeviceApiError as exc:
            raise CommandError(f"{device.spec.name} could not enrol: {exc}") from exc
        device.sequence = 0

    def _save_periodically(self, state: devices.FleetState, fleet: list[SimulatedDevice], done: Any) -> None:
        while not done():
            time.sleep(5)
            for device in fleet:
                state.save(device)

"""``manage.py graph_connect_demo``: point the tenant connection at a running Graph emulator."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools.emulator.state import Config
from graph import connection, profile_sync
from graph.models import TenantConnection
from portal.audit import Actor
from portal.lib import refusal
from profiles.models import Profile


class Command(BaseCommand):
    help = (
        "Connect the portal to the Graph emulator (graph_emulator) with the emulator's demo app registration."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="https://127.0.0.1:8443", help="The emulator's base URL.")
        parser.add_argument(
            "--ca-file",
            default=str(Path(settings.DATA_DIR) / "graph-emulator" / "ca.pem"),
            help="The CA certificate the emulator wrote at start-up.",
        )
        parser.add_argument(
            "--wait", type=float, default=30.0, help="Seconds to wait for the emulator to answer."
        )
        parser.add_argument(
            "--write-limit", type=int, default=Config().write_limit, help="The portal's write budget."
        )
        parser.add_argument("--write-window", type=float, default=Config().write_window, help="Seconds.")
        parser.add_argument(
            "--force", action="store_true", help="Replace a connection that points at a real tenant."
        )

    @refusal.stops_command
    def handle(self, *args: Any, **options: Any) -> None:
        url = options["url"].rstrip("/")
        current = TenantConnection.current()
        if current and current.authority_url != url and not options["force"]:
            self.stdout.write(
                f"Left the existing connection to tenant {current.tenant_id} alone (use --force)."
            )
            return
        ca_file = Path(options["ca_file"])
        ca = self._wait_for(url, ca_file, options["wait"])
        defaults = Config()
        connection.save_connection(
            Actor.system("graph_connect_demo"),
            connection.ConnectionInput(
                tenant_id=defaults.tenant_id,
                client_id=defaults.client_id,
                cloud=TenantConnection.Cloud.GLOBAL,
                credential_kind=TenantConnection.Credential.SECRET,
                secret=defaults.client_secret,
                authority_url=url,
                graph_url=url,
                ca_certificate=ca,
                write_limit=options["write_limit"],
                write_window_seconds=options["write_window"],
            ),
        )
        tested = connection.test_connection(Actor.system("graph_connect_demo"))
        outcome = "signed in" if tested.test_ok else f"test failed: {tested.test_result.get('summary')}"
        self.stdout.write(f"Tenant connection points at the Graph emulator {url} ({outcome}).")
        if tested.test_ok:
            # The demo's profiles were made before the tenant was connected: send them now.
            sent = profile_sync.send_outstanding(Actor.system("graph_connect_demo"), Profile.objects.all())
            self.stdout.write(f"{sent} profile(s) queued for Intune.")

    def _wait_for(self, url: str, ca_file: Path, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while True:
            try:
                ca = ca_file.read_text()
                session = requests.Session()
                session.trust_env = False
                session.get(f"{url}/_emulator/stats", verify=str(ca_file), timeout=2).raise_for_status()
                return ca
            except (OSError, requests.RequestException) as exc:
                if time.monotonic() > deadline:
                    raise CommandError(f"No Graph emulator at {url} (CA {ca_file}): {exc}") from exc
                time.sleep(0.5)

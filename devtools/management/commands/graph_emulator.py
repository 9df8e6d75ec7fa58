"""``manage.py graph_emulator --port 8443``: a local Microsoft Graph with the demo tenant, over HTTPS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from devtools.emulator.server import Emulator
from devtools.emulator.state import Config


class Command(BaseCommand):
    help = (
        "Serve a local Microsoft Graph (sign-in, directory, userPfxCertificates) seeded with the demo tenant."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = Config()
        parser.add_argument(
            "--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 in a container)."
        )
        parser.add_argument("--port", type=int, default=8443)
        parser.add_argument(
            "--public-host",
            action="append",
            default=[],
            help="Extra host name for the TLS certificate and the links it hands out (e.g. graph-emulator).",
        )
        parser.add_argument(
            "--tls-dir",
            default=str(Path(settings.DATA_DIR) / "graph-emulator"),
            help="Where the throwaway CA (ca.pem) and server certificate are written.",
        )
        parser.add_argument("--tenant-id", default=defaults.tenant_id)
        parser.add_argument("--client-id", default=defaults.client_id)
        parser.add_argument("--client-secret", default=defaults.client_secret)
        parser.add_argument("--page-size", type=int, default=defaults.page_size)
        parser.add_argument(
            "--write-limit",
            type=int,
            default=defaults.write_limit,
            help="Writes per window; 0 for no throttling.",
        )
        parser.add_argument("--write-window", type=float, default=defaults.write_window, help="Seconds.")
        parser.add_argument(
            "--retry-after",
            choices=("seconds", "ms", "none"),
            default=defaults.retry_after,
            help="How a 429 tells the client when to retry.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config = Config(
            tenant_id=options["tenant_id"],
            client_id=options["client_id"],
            client_secret=options["client_secret"],
            page_size=options["page_size"],
            write_limit=options["write_limit"],
            write_window=options["write_window"],
            retry_after=options["retry_after"],
        )
        emulator = Emulator(
            host=options["host"],
            port=options["port"],
            tls_dir=Path(options["tls_dir"]),
            config=config,
            public_hosts=options["public_host"],
        )
        self.stdout.write(
            f"Graph emulator at {emulator.url} ({len(emulator.state.users)} users, "
            f"{len(emulator.state.groups)} groups, {len(emulator.state.devices)} devices)\n"
            f"  CA certificate: {emulator.ca_path}\n"
            f"  tenant {config.tenant_id}, client {config.client_id}, secret {config.client_secret}\n"
            f"  {config.write_limit or 'unlimited'} writes per {config.write_window:g} s, pages of {config.page_size}",
        )
        try:
            emulator.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            emulator.stop()

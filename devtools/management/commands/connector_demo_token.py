"""Create an enrollment token for the demo connector and print the agent's command line.

Prints nothing to enrol when the demo connector's state folder already holds a
credential: the agent then simply starts again with its stored identity.
"""

from __future__ import annotations

import shlex
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from connectors import enrolment
from portal.audit import Actor
from portal.lib import refusal


class Command(BaseCommand):
    help = "Print the argv that starts the demo connector (with a fresh one-time token on first run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--server", default=settings.SITE_URL)
        parser.add_argument("--state-dir", type=Path, default=Path(settings.DATA_DIR) / "connector")
        parser.add_argument("--name", default="Demo connector")
        parser.add_argument(
            "--argv-only", action="store_true", help="Print just the shell-quoted command line."
        )

    @refusal.stops_command
    def handle(self, *args: Any, **options: Any) -> None:
        state_dir: Path = options["state_dir"]
        argv = [
            sys.executable,
            "manage.py",
            "run_connector",
            "--server",
            options["server"],
            "--state-dir",
            str(state_dir),
        ]
        argv += ["--name", options["name"], "--host-name", "demo-connector"]
        if not (state_dir / "credential.json").exists():
            _, secret = enrolment.token_create(Actor.system(), name=options["name"], ttl=timedelta(hours=1))
            argv += ["--enroll", secret]
        self.stdout.write(shlex.join(argv))

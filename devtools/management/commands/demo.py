"""Run the whole demo with one command: web server, Celery worker and beat, a connector and devices.

Each runs as its own process, so background work really happens outside the web
server, as it does in production. Stopping the command (Ctrl+C) stops them all;
if one of them dies, the others are stopped too and the command fails.

The processes log at WARNING unless asked for more (``--verbose``, ``--log-level``),
so the sign-in table stays on screen instead of scrolling away under a line per task.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.lib import refusal
from portal.lib.env import development_secret

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_LOG_LEVEL = "WARNING"


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    needs_web: bool = False
    popen: subprocess.Popen[bytes] | None = None


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def log_level(options: dict[str, Any]) -> str:
    """``--log-level`` if given, INFO with ``--verbose``, else WARNING."""
    if options.get("log_level"):
        return str(options["log_level"])
    return "INFO" if options.get("verbose") else DEFAULT_LOG_LEVEL


class Command(BaseCommand):
    graph_url: str  # set by handle() from --graph-port
    seed: bool  # False with --no-seed
    log_level: str = DEFAULT_LOG_LEVEL  # set by handle() from --log-level or --verbose
    help = "Migrate, seed the demo tenant and run the web server, a Celery worker and Celery beat."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--graph-port",
            type=int,
            default=int(os.environ.get("GRAPH_EMULATOR_PORT", "8443")),
            help="Port of the local Microsoft Graph emulator the demo tenant uploads to.",
        )
        parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes.")
        parser.add_argument("--no-seed", action="store_true", help="Skip seeding the demo tenant.")
        parser.add_argument(
            "--log-level",
            choices=LOG_LEVELS,
            type=str.upper,
            help=f"Level the web server, worker, beat and connector log at (default {DEFAULT_LOG_LEVEL}).",
        )
        parser.add_argument(
            "--verbose",
            action="store_true",
            help="Log at INFO: every request and every task (same as --log-level INFO).",
        )

    @refusal.stops_command
    def handle(self, *args: Any, **options: Any) -> None:
        from devtools.production import refuse_in_production

        refuse_in_production("The demo")
        host: str = options["host"]
        port: int = options["port"]
        if not port_is_free(host, port):
            raise CommandError(
                f"Port {port} on {host} is in use. Stop what uses it, or run with PORT=8001 make run."
            )

        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database is up to date.")
        sign_ins = ""
        if not options["no_seed"]:
            from devtools.management.commands.seed_demo import Command as SeedDemo

            call_command("seed_demo", verbosity=0)
            sign_ins = SeedDemo().format_sign_ins()

        url = f"http://{host}:{port}/"
        self.log_level = log_level(options)
        processes = self.processes(
            host=host, port=port, graph_port=options["graph_port"], concurrency=options["concurrency"]
        )
        self.graph_url = f"https://127.0.0.1:{options['graph_port']}"
        self.seed = not options["no_seed"]
        processes.append(
            Process(
                "connector",
                [*self._connector_argv(url), "--log-level", self.log_level],
                env=self._connector_env(),
                needs_web=True,
            )
        )
        if self.seed:
            processes.append(self._devices(url))
        self._run(processes, url, sign_ins)

    def processes(self, *, host: str, port: int, graph_port: int, concurrency: int) -> list[Process]:
        """The web server, worker, beat and Graph emulator, each logging at ``self.log_level``."""
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        # -q: no start-up banner; the demo prints its own summary.
        celery = [python, "-m", "celery", "-A", "portal", "-q"]
        return [
            Process("web", [python, manage, "runserver", f"{host}:{port}", "--noreload", "--skip-checks"]),
            Process(
                "worker",
                [
                    *celery,
                    "worker",
                    "--pool",
                    "prefork",
                    "--concurrency",
                    str(concurrency),
                    "--loglevel",
                    self.log_level,
                    "-n",
                    "demo-worker@%h",
                ],
            ),
            Process(
                "beat",
                [
                    *celery,
                    "beat",
                    "--loglevel",
                    self.log_level,
                    "--schedule",
                    str(settings.CELERY_BEAT_SCHEDULE_FILENAME),
                ],
            ),
            Process("graph-emulator", [python, manage, "graph_emulator", "--port", str(graph_port)]),
        ]

    def _devices(self, url: str) -> Process:
        """A small fleet of simulated devices, so profile status shows Succeeded and Error beside
        Pending (the devices not simulated)."""
        manage = str(settings.BASE_DIR / "manage.py")
        argv = [sys.executable, manage, "simulate_devices", "--server", url.rstrip("/")]
        argv += ["--count", "12", "--interval", "20", "--failure-rate", "0.3"]
        return Process("devices", argv, needs_web=True)

    def child_env(self) -> dict[str, str]:
        """The environment every process starts with: this one, at the demo's log level."""
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": self.log_level,
            # runserver's "do not use in production" notice; the demo says what it is.
            "DJANGO_RUNSERVER_HIDE_WARNING": "true",
        }

    def _connector_argv(self, url: str) -> list[str]:
        # A first run gets a one-time enrolment token; later runs reuse the stored credential.
        out = StringIO()
        call_command("connector_demo_token", server=url.rstrip("/"), stdout=out)
        return shlex.split(out.getvalue().strip())

    def _connector_env(self) -> dict[str, str]:
        # The demo connector's key store passphrase stays beside its state, never in the database.
        path = Path(settings.DATA_DIR) / "connector-passphrase"
        return {"CONNECTOR_KEY_PASSPHRASE": development_secret(path, lambda: secrets.token_urlsafe(32))}

    def _run(self, processes: list[Process], url: str, sign_ins: str) -> None:
        env = self.child_env()
        for proc in processes:
            if proc.needs_web and not self._web_answers(url, processes):
                break
            proc.popen = subprocess.Popen(
                proc.argv, cwd=settings.BASE_DIR, env={**env, **proc.env}, start_new_session=True
            )
        self._connect_graph()
        if self.seed:
            self._import_demo_certificates()
        self._banner(url, sign_ins, processes)

        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        failed: Process | None = None
        while not stopping and failed is None:
            time.sleep(0.5)
            failed = next((p for p in processes if p.popen and p.popen.poll() is not None), None)
        self._stop_all(processes)
        if failed is not None:
            code = failed.popen.returncode if failed.popen else "?"
            raise CommandError(f"The {failed.name} process exited with code {code}.")
        self.stdout.write("Demo stopped.")

    def _connect_graph(self) -> None:
        # Point the demo tenant at the emulator; a connection to a real tenant is left alone.
        try:
            call_command("graph_connect_demo", url=self.graph_url, wait=30, stdout=StringIO())
        except CommandError as exc:
            self.stderr.write(f"The demo tenant is not connected to the Graph emulator: {exc}")
        else:
            self.stdout.write(f"Demo tenant connected to the Microsoft Graph emulator at {self.graph_url}.")

    def _import_demo_certificates(self) -> None:
        """Once the connector has published its key (the default for imports), run the demo's bulk import."""
        from certs.models import EncryptionKey
        from devtools.certificates import seed_demo_certificates

        deadline = time.monotonic() + 30
        while (key := EncryptionKey.objects.filter(is_default=True).first()) is None:
            if time.monotonic() > deadline:
                self.stderr.write("No encryption key arrived from the connector: no demo certificates.")
                return
            time.sleep(0.5)
        batch = seed_demo_certificates(key)
        if batch is not None:
            self.stdout.write(f"Demo bulk import of {batch.total} certificates started with key {key}.")

    def _web_answers(self, url: str, processes: list[Process]) -> bool:
        """Wait for the web server before starting what talks to it."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(p.popen and p.popen.poll() is not None for p in processes):
                return False
            try:
                with urllib.request.urlopen(f"{url}healthz", timeout=2):
                    return True
            except OSError:
                time.sleep(0.3)
        return False

    def _stop_all(self, processes: list[Process]) -> None:
        # Only each process itself is asked to stop: the Celery worker then ends its own pool.
        # Signalling the whole group would kill the pool's children under the worker, which
        # reports each of them as an error.
        for proc in processes:
            if proc.popen and proc.popen.poll() is None:
                proc.popen.terminate()
        deadline = time.monotonic() + 15
        for proc in processes:
            if proc.popen is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            # Whatever is left in its group (a stuck pool child) does not outlive the demo.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)

    def _banner(self, url: str, sign_ins: str, processes: list[Process]) -> None:
        out = self.stdout
        out.write("")
        out.write(self.style.SUCCESS(f"PFX Portal is running at {url}"))
        out.write(
            "Processes: " + ", ".join(f"{p.name} (pid {p.popen.pid if p.popen else '?'})" for p in processes)
        )
        if sign_ins:
            out.write(sign_ins)
            out.write("Current code for the TOTP accounts: .venv/bin/python manage.py demo_totp")
        out.write("Press Ctrl+C to stop.")
        out.write("")

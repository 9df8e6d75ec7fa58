"""The real connector agent as a subprocess, a recording proxy in front of the live server, and test data."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from certs.models import Certificate, EncryptionKey
from certs.pfx import encrypt_password
from connectors import enrolment
from directory.models import DirectoryUser
from portal.audit import Actor
from portal.models import User

PASSPHRASE = "key store passphrase for tests"


@pytest.fixture(autouse=True)
def _fast_connector_clock(settings: Any) -> None:
    settings.CONNECTOR_HEARTBEAT_INTERVAL = 1
    settings.CONNECTOR_GRACE_SECONDS = 2
    settings.CONNECTOR_DOWN_AFTER_SECONDS = 6
    settings.PORTAL_ENFORCE_MFA = False
    # Rate-limit counters live in the shared cache; each test starts with none.
    cache.clear()


class RecordingProxy:
    """Forwards every request to the live server and keeps each request and response body."""

    def __init__(self, target: str, port: int = 0) -> None:
        self.target = target.rstrip("/")
        self.bodies: list[bytes] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.bodies.append(body)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                request = urllib.request.Request(
                    proxy.target + self.path, data=body, headers=headers, method="POST"
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, payload = response.status, response.read()
                except urllib.error.HTTPError as exc:
                    status, payload = exc.code, exc.read()
                proxy.bodies.append(payload)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(live_server: Any) -> Iterator[RecordingProxy]:
    recorder = RecordingProxy(str(live_server))
    yield recorder
    recorder.close()


Agent = subprocess.Popen[bytes]


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    """``start_agent(server, "a", "--enroll", token, "--key-name", "KeyA")``: the agent program as its own process.

    ``log=path`` sends what the agent prints to that file.
    """
    started: list[Agent] = []

    def start(server: str, name: str, *args: str, log: Path | None = None) -> Agent:
        argv = [
            sys.executable,
            "-m",
            "connectors.agent",
            "--server",
            server,
            "--state-dir",
            str(tmp_path / name),
        ]
        argv += ["--name", name, "--host-name", f"host-{name}", *args]
        # Only the key store passphrase: no database settings reach the agent.
        env = {
            "PATH": os.environ.get("PATH", ""),
            "CONNECTOR_KEY_PASSPHRASE": PASSPHRASE,
            "PYTHONUNBUFFERED": "1",
        }
        if log is None:
            proc = subprocess.Popen(argv, cwd=settings.BASE_DIR, env=env)
        else:
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    argv, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
                )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def token_for(intune_admin: User) -> Callable[[str], str]:
    def make(name: str) -> str:
        return enrolment.token_create(Actor.for_user(intune_admin), name=name)[1]

    return make


@pytest.fixture
def make_certificates(db: None) -> Callable[[EncryptionKey, list[str]], list[Certificate]]:
    """Certificates whose PFX passwords are encrypted to ``key`` (the PFX bytes are a stand-in)."""

    def make(key: EncryptionKey, passwords: list[str]) -> list[Certificate]:
        from cryptography.hazmat.primitives import serialization

        public = serialization.load_pem_public_key(key.public_key_pem.encode())
        rows = []
        for i, password in enumerate(passwords):
            user, _ = DirectoryUser.objects.get_or_create(
                upn=f"user{i}@contoso.example", defaults={"display_name": f"User {i}"}
            )
            now = timezone.now()
            rows.append(
                Certificate.objects.create(
                    user=user,
                    upn=user.upn,
                    thumbprint=f"{i:040x}",
                    subject=f"CN=User {i}",
                    issuer="CN=Contoso CA",
                    serial=str(i),
                    not_before=now - timedelta(days=1),
                    not_after=now + timedelta(days=365),
                    key_type="rsa",
                    key_size=2048,
                    encryption_key=key,
                    padding=key.default_padding,
                    pfx_blob=b"pfx-stand-in",
                    encrypted_password=encrypt_password(password, public, key.default_padding),  # type: ignore[arg-type]
                )
            )
        return rows

    return make

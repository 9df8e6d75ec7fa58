"""Real processes: the connector agent re-encrypts, simulated devices install; killing the agent loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.models import Count

from certs.models import EncryptionKey
from conftest import wait_for
from connectors import enrolment
from connectors.models import Connector, ConnectorEvent, ConnectorJob
from delivery import protocol
from delivery.models import DeliveryState
from delivery.tests.conftest import SECRET, Tenant, directory, key
from directory.models import Device, DirectoryUser, Platform
from portal.audit import Actor
from profiles.models import DeliveryStatus

pytestmark = pytest.mark.django_db(transaction=True)

PASSPHRASE = "key store passphrase for delivery tests"


@pytest.fixture
def processes() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*argv: str, log: Path) -> subprocess.Popen[bytes]:
        # Only what a separate machine would have: no database settings.
        env = {
            "PATH": os.environ.get("PATH", ""),
            "CONNECTOR_KEY_PASSPHRASE": PASSPHRASE,
            "PYTHONUNBUFFERED": "1",
        }
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, *argv], cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _agent(
    start: Callable[..., subprocess.Popen[bytes]], server: str, state: Path, *extra: str
) -> subprocess.Popen[bytes]:
    argv = [
        "-m",
        "connectors.agent",
        "--server",
        server,
        "--state-dir",
        str(state),
        "--name",
        "A",
        "--interval",
        "1",
    ]
    return start(*argv, *extra, log=state.with_suffix(".log"))


@pytest.fixture
def agent_process(
    live_server: Any, processes: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> subprocess.Popen[bytes]:
    token = enrolment.token_create(Actor.system(), name="A")[1]
    proc = _agent(processes, str(live_server), tmp_path / "agent", "--enroll", token)
    wait_for(lambda: EncryptionKey.objects.filter(possession_proven_at__isnull=False).exists(), timeout=30)
    return proc


@pytest.fixture
def agent_tenant(agent_process: subprocess.Popen[bytes]) -> Tenant:
    return directory(Connector.objects.get(), None, EncryptionKey.objects.get())


def _simulator(
    start: Callable[..., subprocess.Popen[bytes]], server: str, tenant: Tenant, log: Path
) -> subprocess.Popen[bytes]:
    device = tenant.device
    return start(
        "-m",
        "delivery.simulator",
        "--server",
        server,
        "--secret",
        SECRET,
        "--device",
        f"{device.device_id}:{device.platform}:{device.name}",
        "--interval",
        "0.3",
        "--store-log",
        str(log),
        log=log.with_suffix(".out"),
    )


def _stores(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line)["store"] for line in log.read_text().splitlines() if line.strip()]


def test_a_simulated_device_process_installs_what_the_connector_process_re_encrypted(
    agent_tenant: Tenant, live_server: Any, processes: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    tenant = agent_tenant
    tenant.profile()
    certificate = tenant.certificate()
    log = tmp_path / "stores.jsonl"
    _simulator(processes, str(live_server), tenant, log)

    wait_for(lambda: any(certificate.thumbprint in s for s in _stores(log)), timeout=60)
    succeeded = DeliveryState.objects.filter(status=DeliveryStatus.SUCCEEDED, reported_at__isnull=False)
    wait_for(lambda: succeeded.filter(device=tenant.device, certificate=certificate).exists(), timeout=10)
    event = ConnectorEvent.objects.get(event_id=ConnectorEvent.REENCRYPT_SUCCESS)
    assert str(certificate.pk) in event.message


def test_killing_the_connector_mid_run_loses_no_job_and_does_none_twice(
    agent_tenant: Tenant,
    agent_process: subprocess.Popen[bytes],
    live_server: Any,
    processes: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
    settings: Any,
) -> None:
    settings.CONNECTOR_JOB_TIMEOUT_SECONDS = 3
    tenant = agent_tenant
    certificate = tenant.certificate()
    pem = protocol.public_pem(key(1))
    total = 400
    ConnectorJob.objects.bulk_create(
        ConnectorJob(
            kind=ConnectorJob.Kind.DEVICE,
            certificate_id=certificate.pk,
            from_fingerprint=tenant.encryption_key.fingerprint,
            to_fingerprint=f"{i:064x}",
            device_public_key=pem,
        )
        for i in range(total)
    )
    done = ConnectorJob.objects.filter(state=ConnectorJob.State.DONE)
    wait_for(lambda: done.exists(), timeout=30, interval=0.01)
    os.kill(agent_process.pid, signal.SIGKILL)
    agent_process.wait(timeout=10)
    at_kill = done.count()
    assert at_kill < total, "the agent finished before it could be killed; queue more jobs"

    _agent(processes, str(live_server), tmp_path / "agent")  # the same connector, restarted
    wait_for(lambda: done.count() == total, timeout=90)
    assert not ConnectorJob.objects.exclude(state=ConnectorJob.State.DONE).exists()
    # Each job was re-encrypted and kept exactly once: one success event per job.
    successes = ConnectorEvent.objects.filter(event_id=ConnectorEvent.REENCRYPT_SUCCESS).count()
    assert successes == total
    assert not ConnectorJob.objects.values("to_fingerprint").annotate(n=Count("id")).filter(n__gt=1).exists()


def test_killing_a_web_worker_mid_run_loses_no_delivery(
    processes: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    from conftest import _database_url

    port = _free_port()
    server = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEVICE_API_RATE_PER_MINUTE": "100000",
        "DEVICE_POLICY_RECHECK_SECONDS": "0",
        "CONNECTOR_JOB_TIMEOUT_SECONDS": "10",
        "PORTAL_ENFORCE_MFA": "false",
    }
    granian = str(Path(sys.executable).parent / "granian")
    with (tmp_path / "web.log").open("ab") as out:
        web = subprocess.Popen(
            [
                granian,
                "--interface=wsgi",
                "--workers=2",
                "--respawn-failed-workers",
                # The simulated devices keep their connections open: stop anyway at the end.
                "--workers-kill-timeout=5",
                "--host=127.0.0.1",
                f"--port={port}",
                "portal.wsgi:application",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _answers(port), timeout=60)
        token = enrolment.token_create(Actor.system(), name="A")[1]
        _agent(processes, server, tmp_path / "agent", "--enroll", token)
        wait_for(
            lambda: EncryptionKey.objects.filter(possession_proven_at__isnull=False).exists(), timeout=30
        )
        tenant = directory(Connector.objects.get(), None, EncryptionKey.objects.get())
        tenant.profile()
        devices = [tenant.device]
        for i in range(5):
            user = DirectoryUser.objects.create(upn=f"user{i}@contoso.example", display_name=f"User {i}")
            devices.append(
                Device.objects.create(name=f"PC-{i}", primary_user=user, platform=Platform.WINDOWS)
            )
        for device in devices:
            tenant.certificate(user=device.primary_user)
        specs = [f"{d.device_id}:{d.platform}:{d.name}" for d in devices]
        device_args = [arg for spec in specs for arg in ("--device", spec)]
        processes(
            "-m",
            "delivery.simulator",
            "--server",
            server,
            "--secret",
            SECRET,
            *device_args,
            "--interval",
            "0.2",
            log=tmp_path / "devices.log",
        )
        succeeded = DeliveryState.objects.filter(status=DeliveryStatus.SUCCEEDED)
        wait_for(lambda: succeeded.exists(), timeout=60, interval=0.05)
        workers = subprocess.run(["ps", "-o", "pid=", "--ppid", str(web.pid)], capture_output=True, text=True)
        os.kill(int(workers.stdout.split()[0]), signal.SIGKILL)
        assert succeeded.count() < len(devices), "every device was served before the kill; add devices"

        wait_for(lambda: succeeded.count() == len(devices), timeout=90)
        jobs = ConnectorJob.objects.filter(kind=ConnectorJob.Kind.DEVICE)
        assert jobs.count() == len(devices) == jobs.filter(state=ConnectorJob.State.DONE).count()
        assert ConnectorEvent.objects.filter(event_id=ConnectorEvent.REENCRYPT_SUCCESS).count() == len(
            devices
        )
    finally:
        web.terminate()
        web.wait(timeout=30)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False

"""Graph clients and certificates for the emulator (the emulator itself is a root fixture)."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings

from certs.models import Certificate, EncryptionKey
from conftest import _database_url
from devtools.emulator.server import Emulator
from directory.models import DirectoryUser
from graph import connection
from graph.client import CLOUDS, GraphClient, TokenSource
from graph.models import TenantConnection
from graph.tests.factories import make_pfx
from portal.lib.workers import celery_worker_argv


def emulator_session(ca_path: Path) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify=
    session.verify = str(ca_path)
    return session


@pytest.fixture
def graph(emulator: Emulator) -> GraphClient:
    """A client signed in to the emulator with a client secret, with quick backoff."""
    session = emulator_session(emulator.ca_path)
    tokens = TokenSource(
        tenant_id=emulator.config.tenant_id,
        client_id=emulator.config.client_id,
        credential=emulator.config.client_secret,
        cloud=CLOUDS["global"],
        authority_host=emulator.url,
        session=session,
    )
    return GraphClient(
        graph_url=emulator.url,
        tokens=tokens.token,
        forget_token=tokens.forget,
        session=session,
        backoff_base=0.05,
        backoff_cap=2.0,
    )


@pytest.fixture(autouse=True)
def _private_broker(broker_folder: Path | None) -> None:
    # Tasks sent on commit go to this run's own queue, never to the demo's.
    pass


@pytest.fixture
def connected(emulator: Emulator, db: None) -> TenantConnection:
    """The portal's tenant connection, pointing at the emulator."""
    return emulator.connect_portal()


@pytest.fixture
def portal_graph(connected: TenantConnection) -> GraphClient:
    """The client the services build from the stored connection (with quick backoff for tests)."""
    client = connection.client_for(connected)
    client.backoff_base, client.backoff_cap = 0.05, 2.0
    return client


@pytest.fixture
def make_certificate(emulator: Emulator, db: None) -> Callable[..., Certificate]:
    """``make_certificate(upn)``: a stored certificate for a user of the emulator's tenant."""
    key = EncryptionKey.objects.create(
        provider_name="Microsoft Software Key Storage Provider",
        key_name="PFXEncryptionKey",
        size=2048,
        fingerprint=uuid.uuid4().hex,
        public_key_pem="-",
    )

    def make(upn: str | None = None, *, purpose: str = "smimeEncryption") -> Certificate:
        found = next(
            (u for u in emulator.state.users.values() if upn is None or u["userPrincipalName"] == upn), None
        )
        object_id = uuid.UUID(found["id"]) if found else uuid.uuid4()
        user, _ = DirectoryUser.objects.get_or_create(
            object_id=object_id,
            defaults={"upn": upn or found["userPrincipalName"], "display_name": "x"},  # type: ignore[index]
        )
        pfx, thumbprint, cert = make_pfx(user.upn)
        return Certificate.objects.create(
            user=user,
            upn=user.upn,
            thumbprint=thumbprint,
            purpose=purpose,
            subject=user.upn,
            issuer=user.upn,
            serial=str(cert.serial_number),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            key_type="ec",
            encryption_key=key,
            padding="oaepSha512",
            pfx_blob=pfx,
            encrypted_password=b"\x02" * 256,
        )

    return make


def emulator_upns(emulator: Emulator, count: int) -> list[str]:
    return [str(u["userPrincipalName"]) for u in list(emulator.state.users.values())[:count]]


class Worker:
    """A worker in its own process group, so a test can kill it and its pool children at once."""

    def __init__(self, broker_folder: Path | None) -> None:
        env = {**os.environ, "DATABASE_URL": _database_url(), "PYTHONUNBUFFERED": "1"}
        if broker_folder is not None:
            env["CELERY_BROKER_FOLDER"] = str(broker_folder)
        self.proc = subprocess.Popen(
            celery_worker_argv("kill"), cwd=settings.BASE_DIR, env=env, start_new_session=True
        )

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=20)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGQUIT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def start_worker(transactional_db: None, broker_folder: Path | None) -> Iterator[Callable[[], Worker]]:
    workers: list[Worker] = []

    def start() -> Worker:
        workers.append(Worker(broker_folder))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()

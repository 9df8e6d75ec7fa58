"""A Graph emulator over real HTTPS for the whole run, reset between tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from graph.client import CLOUDS, GraphClient, TokenSource
from graph.emulator import Config, Emulator


@pytest.fixture(scope="session")
def _emulator_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    server = Emulator(tls_dir=tmp_path_factory.mktemp("graph-tls")).start()
    yield server
    server.stop()


@pytest.fixture
def emulator(_emulator_server: Emulator) -> Iterator[Emulator]:
    """The emulator with no certificates, its demo directory, and default settings (small pages)."""
    state = _emulator_server.state
    with state.lock:
        state.config = dataclasses.replace(Config(), page_size=7)
        state.reset_certificates()
    saved = (
        dict(state.users),
        dict(state.groups),
        {k: list(v) for k, v in state.members.items()},
        dict(state.devices),
    )
    yield _emulator_server
    with state.lock:
        state.users, state.groups, state.members, state.devices = (
            saved[0],
            saved[1],
            saved[2],
            saved[3],
        )


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

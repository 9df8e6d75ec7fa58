"""Fixtures shared by every app's tests: admins holding built-in roles over scope tags, a real Celery
worker, and the Microsoft Graph emulator over real HTTPS."""

from __future__ import annotations

import dataclasses
import importlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.core.cache import cache

from delivery import quiet
from devtools.emulator.server import Emulator
from devtools.emulator.state import Config
from portal import summaries
from portal.lib.workers import celery_worker_argv
from portal.models import Role, RoleAssignment, ScopeTag, User
from profiles.specs import forget_tenant_specs

_seed = importlib.import_module("portal.migrations.0002_built_in_roles_and_audit_guard")

PASSWORD = "correct horse battery staple 7"


@pytest.fixture(autouse=True, scope="session")
def empty_cache() -> None:
    # The cache outlives test runs (files or Redis); rate limits from a previous run must not leak in.
    cache.clear()


@pytest.fixture(autouse=True, scope="session")
def flush_may_empty_the_audit_log() -> Iterator[None]:
    """Transactional tests empty every table afterwards, the audit log included.

    The database refuses deletes from the audit log unless its purge guard table holds a row,
    so the flush holds one for its own transaction only.
    """
    from django.db import transaction
    from django.db.backends.base.operations import BaseDatabaseOperations

    flush = BaseDatabaseOperations.execute_sql_flush

    def flush_with_the_guard_open(ops: BaseDatabaseOperations, sql_list: list[str]) -> None:
        with transaction.atomic(using=ops.connection.alias), ops.connection.cursor() as cursor:
            cursor.execute("INSERT INTO portal_auditpurge DEFAULT VALUES")
            flush(ops, sql_list)
            cursor.execute("DELETE FROM portal_auditpurge")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseDatabaseOperations, "execute_sql_flush", flush_with_the_guard_open)
        yield


@pytest.fixture(autouse=True)
def forget_kept_summaries() -> None:
    # Home's counts, the profile specs and quiet check-ins are kept per process between changes; each test's
    # data is its own (and ids repeat after a rollback).
    summaries.forget()
    forget_tenant_specs()
    quiet.forget()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # Production hashing is deliberately slow; tests create many accounts.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def built_in_roles(db: None) -> dict[str, Role]:
    # Transactional tests flush the tables, data migrations included; put them back.
    _seed.sync_built_in_roles(django_apps, None)
    return {role.key: role for role in Role.objects.filter(is_built_in=True) if role.key}


@pytest.fixture
def make_tag(db: None) -> Callable[[str], ScopeTag]:
    def make(name: str) -> ScopeTag:
        return ScopeTag.objects.get_or_create(name=name)[0]

    return make


@pytest.fixture
def make_admin(built_in_roles: dict[str, Role]) -> Callable[..., User]:
    """``make_admin("help_desk_operator", tags=[tag])``: a user holding that role over those tags."""

    def make(role_key: str | None = None, *, tags: Iterable[ScopeTag] = (), email: str | None = None) -> User:
        email = email or f"{role_key or 'nobody'}-{User.objects.count() + 1}@contoso.example"
        user = User.objects.create_user(email=email, password=PASSWORD, display_name=email.split("@")[0])
        if role_key:
            role = built_in_roles[role_key]
            assignment = RoleAssignment.objects.create(role=role, name=f"{role.name} for {email}")
            assignment.members.add(user)
            assignment.scope_tags.set(list(tags))
        return user

    return make


@pytest.fixture
def intune_admin(make_admin: Callable[..., User]) -> User:
    return make_admin("intune_administrator")


@pytest.fixture
def helpdesk(make_admin: Callable[..., User]) -> User:
    return make_admin("help_desk_operator")


def _database_url() -> str:
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="session")
def broker_folder(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """With the file-based broker, each test run gets its own queue, so no other worker takes its tasks."""
    from django.conf import settings

    from portal.celery import app

    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return None
    folder = tmp_path_factory.mktemp("broker")
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir()
    app.conf.broker_transport_options = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
    }
    return folder


@pytest.fixture
def celery_worker(transactional_db: None, broker_folder: Path | None) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process (prefork pool) working on the test database and broker."""
    from django.conf import settings

    from portal.celery import app
    from portal.tasks import HEARTBEAT_KEY, heartbeat

    env = {**os.environ, "DATABASE_URL": _database_url(), "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}
    if broker_folder is not None:
        env["CELERY_BROKER_FOLDER"] = str(broker_folder)
    else:
        # A shared broker may hold messages of earlier runs; start from an empty queue.
        app.control.purge()
    proc = subprocess.Popen(celery_worker_argv("test"), cwd=settings.BASE_DIR, env=env)
    try:
        cache.delete(HEARTBEAT_KEY)
        heartbeat.delay()
        deadline = time.monotonic() + 60
        while cache.get(HEARTBEAT_KEY) is None:
            if proc.poll() is not None:
                pytest.fail(f"the Celery worker exited with code {proc.returncode}")
            if time.monotonic() > deadline:
                pytest.fail("the Celery worker did not start within 60 s")
            time.sleep(0.2)
        yield proc
    finally:
        # Cold shutdown: the test is over, nothing in flight needs finishing.
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.2) -> object:
    """Poll until ``predicate()`` is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


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

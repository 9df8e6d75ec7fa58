"""The PostgreSQL role the portal runs as can change rows but never the audit log's history.

These tests create real roles on the PostgreSQL server; on SQLite only the refusal is checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from portal import audit
from portal.audit import Actor

PASSWORD = "app-role-password-1"

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="roles and grants exist on PostgreSQL only"
)


def _drop_role(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        if cursor.fetchone():
            cursor.execute(f'DROP OWNED BY "{name}"')
            cursor.execute(f'DROP ROLE "{name}"')


@pytest.fixture
def app_role(transactional_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"pfx_test_app_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("TEST_APP_ROLE_PASSWORD", PASSWORD)
    yield name
    _drop_role(name)


def _connect_as(role: str, dbname: str | None = None) -> Any:
    import psycopg

    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        dbname=dbname or db["NAME"],
        user=role,
        password=PASSWORD,
        autocommit=True,
    )


@postgresql_only
def test_the_app_role_cannot_delete_truncate_update_or_unguard_the_audit_log(app_role: str) -> None:
    import psycopg

    with transaction.atomic():
        event = audit.record(
            Actor.system(), activity="Kept", category="Role", operation="create", resources=[]
        )
    call_command("db_app_role", app_role, password_env="TEST_APP_ROLE_PASSWORD", verbosity=0)

    with _connect_as(app_role) as app:
        # What the portal does at run time still works: read and append to the log, change other rows.
        assert app.execute("SELECT activity FROM portal_auditevent WHERE id = %s", [event.pk]).fetchone() == (
            "Kept",
        )
        app.execute(
            "INSERT INTO portal_auditevent (code, occurred_at, actor_type, actor_name, activity, operation,"
            " category, result, correlation_id, resources)"
            " VALUES (%s, now(), 'system', 'x', 'Appended', 'create', 'Role', 'success', %s, '[]')",
            [uuid.uuid4(), uuid.uuid4()],
        )
        app.execute(
            "INSERT INTO portal_scopetag (code, name, description, is_default, created_at)"
            " VALUES (%s, 'T', '', false, now())",
            [uuid.uuid4()],
        )
        app.execute("UPDATE portal_scopetag SET description = 'changed' WHERE name = 'T'")
        app.execute("DELETE FROM portal_scopetag WHERE name = 'T'")

        refused = [
            f"DELETE FROM portal_auditevent WHERE id = {event.pk}",
            "TRUNCATE portal_auditevent",
            f"UPDATE portal_auditevent SET activity = 'Rewritten' WHERE id = {event.pk}",
            "ALTER TABLE portal_auditevent DISABLE TRIGGER ALL",
            "ALTER TABLE portal_auditevent DISABLE TRIGGER portal_auditevent_no_delete",
            "DROP TRIGGER portal_auditevent_no_truncate ON portal_auditevent",
            "INSERT INTO portal_auditpurge DEFAULT VALUES",
            "TRUNCATE portal_scopetag",
        ]
        for statement in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)

    with connection.cursor() as cursor:
        cursor.execute("SELECT activity FROM portal_auditevent ORDER BY id")
        assert [row[0] for row in cursor.fetchall()] == ["Kept", "Appended"]


@postgresql_only
def test_the_owner_cannot_empty_the_audit_log_either(transactional_db: None) -> None:
    import psycopg

    with transaction.atomic():
        audit.record(Actor.system(), activity="Kept", category="Role", operation="create", resources=[])
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        dbname=db["NAME"],
        user=db["USER"],
        autocommit=True,
    ) as owner:
        for statement in ("TRUNCATE portal_auditevent", "DELETE FROM portal_auditevent"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                owner.execute(statement)
        assert owner.execute("SELECT count(*) FROM portal_auditevent").fetchone() == (1,)


@postgresql_only
def test_tables_created_after_the_role_give_it_rows_but_not_the_audit_log(app_role: str) -> None:
    """The docker-compose order on a new database: the role first, then the migrations."""
    fresh = f"{connection.settings_dict['NAME']}_fresh_{uuid.uuid4().hex[:6]}"
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{fresh}"
    env = {**os.environ, "DATABASE_URL": url, "TEST_APP_ROLE_PASSWORD": PASSWORD}
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{fresh}"')
    try:
        for argv in (
            [*manage, "db_app_role", app_role, "--password-env", "TEST_APP_ROLE_PASSWORD", "-v0"],
            [*manage, "migrate", "--noinput", "-v0"],
        ):
            subprocess.run(argv, env=env, check=True, cwd=settings.BASE_DIR, timeout=300)
        with _connect_as(app_role, fresh) as app:
            rights = app.execute(
                "SELECT t, p, has_table_privilege(t, p) FROM unnest(%s::text[]) t, unnest(%s::text[]) p",
                [
                    ["portal_auditevent", "portal_auditpurge", "certs_certificate"],
                    ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"],
                ],
            ).fetchall()
        granted = {(t, p) for t, p, has in rights if has}
        assert granted == {
            ("portal_auditevent", "SELECT"),
            ("portal_auditevent", "INSERT"),
            ("portal_auditpurge", "SELECT"),
            ("certs_certificate", "SELECT"),
            ("certs_certificate", "INSERT"),
            ("certs_certificate", "UPDATE"),
            ("certs_certificate", "DELETE"),
        }
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')


@postgresql_only
def test_the_owner_cannot_be_made_the_app_role(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_APP_ROLE_PASSWORD", PASSWORD)
    with pytest.raises(Exception, match="must not be"):
        call_command(
            "db_app_role",
            connection.settings_dict["USER"],
            password_env="TEST_APP_ROLE_PASSWORD",
            verbosity=0,
        )


def test_the_app_role_command_refuses_sqlite_and_a_missing_password(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_APP_ROLE_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="No password in the variable TEST_APP_ROLE_PASSWORD"):
        call_command("db_app_role", "portal_app", password_env="TEST_APP_ROLE_PASSWORD")
    with pytest.raises(CommandError, match="not a plain role name"):
        call_command("db_app_role", 'x"; DROP TABLE y; --', password_env="TEST_APP_ROLE_PASSWORD")
    if connection.vendor == "sqlite":
        monkeypatch.setenv("TEST_APP_ROLE_PASSWORD", PASSWORD)
        with pytest.raises(CommandError, match="SQLite has no roles"):
            call_command("db_app_role", "portal_app", password_env="TEST_APP_ROLE_PASSWORD")

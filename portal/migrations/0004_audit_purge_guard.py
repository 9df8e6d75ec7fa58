"""The audit log refuses DELETE and TRUNCATE at the database, on SQLite and PostgreSQL.

Rows may be removed only while a row exists in ``portal_auditpurge``, a table no model
maps and, on PostgreSQL, no role but the table owner may write to. The portal itself
never writes there; an owner emptying a test database does.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

PG_GUARD = """
CREATE TABLE {schema}.portal_auditpurge (opened_at timestamptz NOT NULL DEFAULT now());
-- Qualified names: an unqualified one could be shadowed by a temporary table of the same name.
CREATE OR REPLACE FUNCTION {schema}.portal_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') AND EXISTS (SELECT 1 FROM {schema}.portal_auditpurge) THEN
        IF TG_LEVEL = 'ROW' THEN
            RETURN OLD;
        END IF;
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER portal_auditevent_no_truncate BEFORE TRUNCATE ON {schema}.portal_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.portal_audit_append_only();
-- Roles given table rights by default privileges (the app's runtime role) keep only
-- reading and appending: no UPDATE, DELETE or TRUNCATE here, and nothing but reading the guard.
DO $$
DECLARE
    grant_row record;
BEGIN
    FOR grant_row IN
        SELECT DISTINCT c.relname, a.grantee::regrole::text AS grantee
        FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
        WHERE c.relnamespace = '{schema}'::regnamespace
          AND c.relname IN ('portal_auditevent', 'portal_auditpurge')
          AND a.grantee NOT IN (0, c.relowner)
    LOOP
        EXECUTE format(
            'REVOKE %s ON {schema}.%I FROM %s',
            CASE grant_row.relname
                WHEN 'portal_auditevent' THEN 'UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'
                ELSE 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'
            END,
            grant_row.relname,
            grant_row.grantee
        );
    END LOOP;
END;
$$;
"""
PG_UNGUARD = """
DROP TRIGGER IF EXISTS portal_auditevent_no_truncate ON {schema}.portal_auditevent;
CREATE OR REPLACE FUNCTION {schema}.portal_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
DROP TABLE IF EXISTS {schema}.portal_auditpurge;
"""
SQLITE_GUARD = [
    "CREATE TABLE portal_auditpurge (opened_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    """
CREATE TRIGGER portal_auditevent_no_delete BEFORE DELETE ON portal_auditevent
WHEN NOT EXISTS (SELECT 1 FROM portal_auditpurge)
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END
""",
]
SQLITE_UNGUARD = [
    "DROP TRIGGER IF EXISTS portal_auditevent_no_delete",
    "DROP TABLE IF EXISTS portal_auditpurge",
]


def _run(schema_editor: Any, postgresql: str, sqlite: list[str]) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        for statement in sqlite:
            schema_editor.execute(statement)
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = connection.ops.quote_name(cursor.fetchone()[0])
    # No parameters: the PL/pgSQL format() placeholders must reach the server untouched.
    schema_editor.execute(postgresql.format(schema=schema), params=None)


def guard(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, PG_GUARD, SQLITE_GUARD)


def unguard(apps: Any, schema_editor: Any) -> None:
    _run(schema_editor, PG_UNGUARD, SQLITE_UNGUARD)


class Migration(migrations.Migration):
    dependencies = [("portal", "0003_audit_event_scope")]

    operations = [migrations.RunPython(guard, unguard)]

"""``manage.py db_app_role ROLE --password-env VAR``: the PostgreSQL role the portal runs as.

Run it as the user that owns the tables and runs the migrations, after ``migrate``. It
creates (or updates) a login role that may read and write rows but owns nothing, so it
cannot alter a table, disable the audit log's triggers or empty a table; on the audit log
it may only read and append. Tables created by later migrations get the same rights.
Running it again puts the rights back to exactly these.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, transaction

ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# Read from transaction-local settings, so the password is never part of a statement's text
# outside this transaction and %I / %L quote every name and value.
APP_ROLE_SQL = """
DO $$
DECLARE
    app text := current_setting('portal.app_role');
    app_password text := current_setting('portal.app_role_password');
    owner text := current_user;
    app_schema text := current_schema();
BEGIN
    IF app = owner THEN
        RAISE EXCEPTION 'the app role must not be %, the role that owns the tables and runs migrations', owner;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = app) THEN
        EXECUTE format('ALTER ROLE %I WITH LOGIN PASSWORD %L', app, app_password);
    ELSE
        EXECUTE format(
            'CREATE ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', app, app_password
        );
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = app AND (rolsuper OR rolbypassrls))
        OR pg_has_role(app, owner, 'MEMBER')
        OR EXISTS (SELECT FROM pg_class WHERE relnamespace = app_schema::regnamespace AND relowner = app::regrole)
    THEN
        RAISE EXCEPTION 'role % is a superuser, a member of % or owns tables: it could rewrite the audit log',
            app, owner;
    END IF;

    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), app);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', app_schema, app);
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', app_schema, app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', app_schema, app);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM %I', app_schema, app);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', app_schema, app);
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
        owner, app_schema, app
    );
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO %I',
        owner, app_schema, app
    );

    -- The audit log: read and append only. Its purge guard: read only.
    IF to_regclass(format('%I.portal_auditevent', app_schema)) IS NOT NULL THEN
        EXECUTE format('REVOKE UPDATE, DELETE ON %I.portal_auditevent FROM %I', app_schema, app);
    END IF;
    IF to_regclass(format('%I.portal_auditpurge', app_schema)) IS NOT NULL THEN
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %I.portal_auditpurge FROM %I', app_schema, app);
    END IF;
END;
$$;
"""


class Command(BaseCommand):
    help = (
        "Create or update the PostgreSQL role the portal's web server and workers connect as: rows only, "
        "no table ownership, and read-and-append only on the audit log. Run as the tables' owner."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help="Name of the role, e.g. portal_app.")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--password-env", metavar="VAR", help="Read the role's password from this variable."
        )
        source.add_argument(
            "--password-stdin", action="store_true", help="Read the role's password from stdin."
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        role: str = options["role"]
        if not ROLE_NAME.fullmatch(role):
            raise CommandError(f"{role!r} is not a plain role name (letters, digits and _, at most 63).")
        password = self._password(options)
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            raise CommandError("db_app_role is for PostgreSQL; SQLite has no roles.")
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('portal.app_role', %s, true), set_config('portal.app_role_password', %s, true)",
                [role, password],
            )
            cursor.execute(APP_ROLE_SQL)
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"Role {role} may read and write the portal's rows and only read and append to the audit log."
            )

    @staticmethod
    def _password(options: dict[str, Any]) -> str:
        if options["password_env"]:
            password = os.environ.get(options["password_env"], "")
            where = f"the variable {options['password_env']}"
        else:
            password = sys.stdin.readline().rstrip("\r\n")
            where = "standard input"
        if not password:
            raise CommandError(f"No password in {where}.")
        return password

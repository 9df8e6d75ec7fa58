"""Authentication backends: Django's and allauth's, reading the signed-in admin in one round trip.

Every request of a signed-in admin needs the admin's row, their role assignments (``portal.access``),
whether they have an authenticator app (``portal.middleware.RequireMfaMiddleware``) and, for a page,
the change clock its kept parts are keyed on (``portal.summaries``). One statement reads all four,
with the SQL built once (``portal.lib.lean``): on a kept page they were most of the work.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from allauth.account.auth_backends import AuthenticationBackend
from allauth.mfa.models import Authenticator
from django.contrib.auth.backends import ModelBackend
from django.db import connection

from portal import access, summaries
from portal.lib import lean
from portal.models import User


def _user(backend: ModelBackend, user_id: Any) -> User | None:
    user = signed_in(user_id)
    return user if user is not None and backend.user_can_authenticate(user) else None


def signed_in(user_id: Any) -> User | None:
    """The admin ``user_id`` with their assignments, TOTP flag and the change clock read with them."""
    statement = lean.statement(User, "pk", 0)
    if statement is None:  # pragma: no cover - the user table is a plain one
        return lean.get(User, "pk", user_id)
    try:
        pk = User._meta.pk.get_db_prep_value(user_id, connection, prepared=False)
    except (TypeError, ValueError):
        return None
    with connection.cursor() as cursor:
        cursor.execute(_sql(statement.sql), [str(Authenticator.Type.TOTP), pk, summaries.LATE_COMMIT_WINDOW])
        rows = cursor.fetchall()
    if not rows:
        return None
    width = len(User._meta.concrete_fields)
    first = rows[0]
    user = lean.instance(User, first, statement)
    user._portal_change_clock = summaries.clock_of(first[width : width + 3])  # type: ignore[attr-defined]
    user._portal_has_totp = bool(first[width + 3])  # type: ignore[attr-defined]
    # After the assignment rows' user id column.
    access.prime(user, [row[width + 5 :] for row in rows])
    return user


@cache
def _sql(user_sql: str) -> str:
    q = connection.ops.quote_name
    authenticators = q(Authenticator._meta.db_table)
    return (
        f"SELECT u.*, c.*, EXISTS (SELECT 1 FROM {authenticators} mfa WHERE mfa.{q('user_id')} = u.{q('id')} "
        f"AND mfa.{q('type')} = %s), x.* "
        f"FROM ({user_sql}) u "
        f"LEFT JOIN ({summaries.clock_sql()}) c ON 1 = 1 "
        f"LEFT JOIN ({access.assignments_sql()}) x ON x.{q('user_id')} = u.{q('id')} "
        f"ORDER BY x.{q('id')}"
    )


class PortalModelBackend(ModelBackend):
    def get_user(self, user_id: Any) -> User | None:
        return _user(self, user_id)


class PortalAccountBackend(AuthenticationBackend):
    def get_user(self, user_id: Any) -> User | None:
        return _user(self, user_id)

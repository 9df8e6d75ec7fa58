"""The PostgreSQL backend's health check of kept connections, against a real server."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from django.db import DatabaseError, close_old_connections, connection

from portal.lib.postgresql import base

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the backend is PostgreSQL's"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every health check run (``is_usable``), by backend process id."""
    seen: list[int] = []
    usable = base.DatabaseWrapper.is_usable

    def counted(self: base.DatabaseWrapper) -> bool:
        seen.append(self.connection.info.backend_pid if self.connection is not None else 0)
        return bool(usable(self))

    monkeypatch.setattr(base.DatabaseWrapper, "is_usable", counted)
    yield seen


def _request(sql: str = "SELECT 1") -> int:
    """One request's worth of database use, between Django's request signals; the backend's pid."""
    close_old_connections()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        cursor.execute("SELECT pg_backend_pid()")
        pid = int(cursor.fetchone()[0])
    close_old_connections()
    return pid


def _terminate(pid: int) -> None:
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"],
        port=settings["PORT"] or None,
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


def _idle_for_longer_than_the_window() -> None:
    connection._used_at -= base.CHECKED_WITHIN + 1  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def kept_connections() -> Iterator[None]:
    connection.close()
    old = dict(connection.settings_dict)
    connection.settings_dict["CONN_MAX_AGE"] = 60
    connection.settings_dict["CONN_HEALTH_CHECKS"] = True
    yield
    connection.close()
    connection.settings_dict.update(old)


def test_requests_in_quick_succession_reuse_the_connection_without_a_check_in_between(
    checks: list[int],
) -> None:
    first = _request()
    assert [_request() for _ in range(5)] == [first] * 5
    assert checks == []


def test_a_connection_idle_past_the_window_is_checked_before_its_next_request(checks: list[int]) -> None:
    first = _request()
    _idle_for_longer_than_the_window()
    assert _request() == first
    assert checks == [first]


def test_a_connection_the_server_dropped_while_idle_is_replaced_without_failing_the_request(
    checks: list[int],
) -> None:
    first = _request()
    _terminate(first)
    _idle_for_longer_than_the_window()
    assert _request() != first
    assert checks == [first]


def test_a_connection_dropped_while_busy_fails_one_request_and_the_next_gets_a_new_one() -> None:
    first = _request()
    _terminate(first)
    with pytest.raises(DatabaseError):
        _request()
    close_old_connections()  # the failed request's end: its connection is tested and dropped
    assert _request() not in (first, 0)

"""Extra sections of the user and device pages, contributed by other apps.

The certificates and profiles apps show what reaches a user on that user's page
without editing the directory app: each registers a panel from its
``AppConfig.ready()``::

    register_user_panel(UserPanel("certs/_user_panel.html", certificates_for_user, order=10))

A panel's ``context`` function returns a dict, or ``None`` to hide the panel (for
example when the admin may not read that area). The panel template sees that dict
as ``panel`` and the page's user as ``directory_user``.

The user page renders its sections once and keeps them (``portal.summaries.fragment``) until an
audit event is written, or until a clock an app registers for the user moves: an app whose panel
shows rows written without an audit event (device reports) registers one, as SQL over the user's
id::

    register_user_clock("delivery", lambda user_id: [f"(SELECT COUNT(*) FROM ... = {user_id})"])

Clocks are read with the user on every view of the page: one statement, whatever the user holds.
Panels are rendered without the request: a form posts with ``{% csrf_token %}`` (the page puts
the token in) and names the page by ``panel``'s values, never by ``request``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from functools import cache
from typing import Any

from django.db import connection

from directory.models import Device, DirectoryUser
from portal.http import AuthenticatedHttpRequest
from portal.lib import lean, sections


class UserPanel(sections.Section[[AuthenticatedHttpRequest, DirectoryUser]]):
    """A section of the directory user page."""


_USER_PANELS: dict[str, UserPanel] = {}


def register_user_panel(panel: UserPanel) -> None:
    """Add (or replace, by template name) a section of the user page."""
    _USER_PANELS[panel.template] = panel


# name -> the SQL expressions of that clock, given the SQL of the user's id column.
_USER_CLOCKS: dict[str, Callable[[str], Sequence[str]]] = {}


def register_user_clock(name: str, columns: Callable[[str], Sequence[str]]) -> None:
    """Add (or replace, by name) values that move whenever a panel of a user would show otherwise.

    ``columns(user_id)`` gives SQL expressions of one value each (scalar subqueries, without
    parameters), where ``user_id`` is the SQL of the user's id: the page reads them with the
    user's row, in one statement.
    """
    _USER_CLOCKS[name] = columns
    _user_sql.cache_clear()


def user_and_clock(object_id: Any) -> tuple[DirectoryUser, tuple[Hashable, ...]] | None:
    """The user ``object_id`` and the values of every registered clock of theirs, read in one
    statement (None when there is no such user)."""
    statement = lean.statement(DirectoryUser, "object_id", object_id)
    if statement is None:  # pragma: no cover - the user table is a plain one
        user = lean.get(DirectoryUser, "object_id", object_id)
        return None if user is None else (user, ())
    value = statement.field.get_db_prep_value(object_id, connection, prepared=False)
    with connection.cursor() as cursor:
        cursor.execute(_user_sql(statement.sql), [value])
        row = cursor.fetchone()
    if row is None:
        return None
    width = len(DirectoryUser._meta.concrete_fields)
    return lean.instance(DirectoryUser, row, statement), tuple(row[width:])


@cache
def _user_sql(user_sql: str) -> str:
    user_id = f"u.{connection.ops.quote_name('id')}"
    columns = [column for name in sorted(_USER_CLOCKS) for column in _USER_CLOCKS[name](user_id)]
    return f"SELECT {', '.join(['u.*', *columns])} FROM ({user_sql}) u"


def user_panels(request: AuthenticatedHttpRequest, user: DirectoryUser) -> list[dict[str, Any]]:
    """The panels to show for ``user``, in order: ``[{"template": ..., "context": {...}}]``."""
    return sections.shown(_USER_PANELS.values(), request, user)


class DevicePanel(sections.Section[[AuthenticatedHttpRequest, Device]]):
    """A section of the directory device page (what the delivery app knows about the device)."""


_DEVICE_PANELS: dict[str, DevicePanel] = {}


def register_device_panel(panel: DevicePanel) -> None:
    """Add (or replace, by template name) a section of the device page."""
    _DEVICE_PANELS[panel.template] = panel


def device_panels(request: AuthenticatedHttpRequest, device: Device) -> list[dict[str, Any]]:
    """The panels to show for ``device``, in order: ``[{"template": ..., "context": {...}}]``."""
    return sections.shown(_DEVICE_PANELS.values(), request, device)

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
shows rows written without an audit event (device reports) registers one::

    register_user_clock("delivery", delivery_clock)

A clock is read on every view of the page: one cheap query, the same whatever the user holds.
Panels are rendered without the request: a form posts with ``{% csrf_token %}`` (the page puts
the token in) and names the page by ``panel``'s values, never by ``request``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from directory.models import Device, DirectoryUser
from portal.http import AuthenticatedHttpRequest
from portal.lib import sections


class UserPanel(sections.Section[[AuthenticatedHttpRequest, DirectoryUser]]):
    """A section of the directory user page."""


_USER_PANELS: dict[str, UserPanel] = {}


def register_user_panel(panel: UserPanel) -> None:
    """Add (or replace, by template name) a section of the user page."""
    _USER_PANELS[panel.template] = panel


_USER_CLOCKS: dict[str, Callable[[DirectoryUser], Hashable]] = {}


def register_user_clock(name: str, clock: Callable[[DirectoryUser], Hashable]) -> None:
    """Add (or replace, by name) a value that moves whenever a panel of ``user`` would show otherwise."""
    _USER_CLOCKS[name] = clock


def user_clock(user: DirectoryUser) -> tuple[Hashable, ...]:
    """Every registered clock of ``user``, in the order of their names."""
    return tuple(_USER_CLOCKS[name](user) for name in sorted(_USER_CLOCKS))


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

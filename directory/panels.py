"""Extra sections of the user and device pages, contributed by other apps.

The certificates and profiles apps show what reaches a user on that user's page
without editing the directory app: each registers a panel from its
``AppConfig.ready()``::

    register_user_panel(UserPanel("certs/_user_panel.html", certificates_for_user, order=10))

A panel's ``context`` function returns a dict, or ``None`` to hide the panel (for
example when the admin may not read that area). The panel template sees that dict
as ``panel`` and the page's user as ``directory_user``.
"""

from __future__ import annotations

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

"""What apps above connectors add to its pages, registered from their ``AppConfig.ready()``.

connectors imports no app above it. The Graph app adds to a key rotation's page how many of the
re-wrapped passwords Intune has received, and to the connectors page the certificate connectors
Intune itself knows::

    register_rotation_section(RotationSection("graph/_rotation_intune.html", rotation_section))
    register_connectors_section(ConnectorsSection("graph/_intune_connectors.html", connectors_section))
"""

from __future__ import annotations

from typing import Any

from connectors.models import KeyRotation
from portal.http import AuthenticatedHttpRequest
from portal.lib import sections


class RotationSection(sections.Section[[AuthenticatedHttpRequest, KeyRotation]]):
    """A section of a key rotation's page."""


class ConnectorsSection(sections.Section[[AuthenticatedHttpRequest]]):
    """A section of the connectors page."""


_ROTATION_SECTIONS: dict[str, RotationSection] = {}
_CONNECTORS_SECTIONS: dict[str, ConnectorsSection] = {}


def register_rotation_section(section: RotationSection) -> None:
    _ROTATION_SECTIONS[section.template] = section


def rotation_sections(request: AuthenticatedHttpRequest, rotation: KeyRotation) -> list[dict[str, Any]]:
    return sections.shown(_ROTATION_SECTIONS.values(), request, rotation)


def register_connectors_section(section: ConnectorsSection) -> None:
    _CONNECTORS_SECTIONS[section.template] = section


def connectors_sections(request: AuthenticatedHttpRequest) -> list[dict[str, Any]]:
    return sections.shown(_CONNECTORS_SECTIONS.values(), request)

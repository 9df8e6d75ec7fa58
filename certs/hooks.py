"""What apps above certs add to its pages, registered from their ``AppConfig.ready()``.

certs imports no app above it. The connectors app adds a section to the encryption keys page
(which connectors hold each key, whether one proved it holds the private key, key rotation)::

    register_keys_section(KeysSection("connectors/_keys_section.html", keys_section, order=10))

A section's ``context`` function returns a dict, or ``None`` to hide the section; the section
template sees that dict as ``section``. The Graph app tells the import pages whether stored
certificates go on to Intune (a tenant is connected)::

    register_delivery("graph", tenant_connected)

Whatever still depends on a key that is being retired says so through a blocker: the Graph app
reports certificates whose copy in Intune still holds a password wrapped to the key::

    register_key_blocker("graph", intune_copies_on_key)

What happens to a stored or deleted certificate is announced by ``certs.signals``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

from certs.models import EncryptionKey
from portal.http import AuthenticatedHttpRequest
from portal.lib import sections


class KeysSection(sections.Section[[AuthenticatedHttpRequest, QuerySet[EncryptionKey]]]):
    """A section of the encryption keys page."""


_KEYS_SECTIONS: dict[str, KeysSection] = {}
_DELIVERY: dict[str, Callable[[], bool]] = {}
_KEY_BLOCKERS: dict[str, Callable[[EncryptionKey], str | None]] = {}


def register_keys_section(section: KeysSection) -> None:
    """Add (or replace, by template name) a section of the encryption keys page."""
    _KEYS_SECTIONS[section.template] = section


def keys_sections(request: AuthenticatedHttpRequest, keys: QuerySet[EncryptionKey]) -> list[dict[str, Any]]:
    """The sections to show below the admin's ``keys``, in order: ``[{"template": ..., "context": {...}}]``."""
    return sections.shown(_KEYS_SECTIONS.values(), request, keys)


def register_delivery(name: str, connected: Callable[[], bool]) -> None:
    """Add (or replace, by name) a place stored certificates are delivered to, and whether it is set up."""
    _DELIVERY[name] = connected


def delivery_connected() -> bool:
    """Whether stored certificates go on somewhere; without it they wait in the portal."""
    return any(connected() for connected in _DELIVERY.values())


def register_key_blocker(name: str, blocker: Callable[[EncryptionKey], str | None]) -> None:
    """Add (or replace, by name) a check that says why a key cannot be retired yet (``None``: nothing)."""
    _KEY_BLOCKERS[name] = blocker


def key_retirement_blockers(key: EncryptionKey) -> list[str]:
    """Why ``key`` cannot be retired yet: certificates still wrapped to it here or elsewhere (empty: it can)."""
    reasons = []
    in_portal = key.certificates.count()
    if in_portal:
        reasons.append(f"{in_portal} certificate password(s) in the portal are still wrapped to {key}.")
    for blocker in _KEY_BLOCKERS.values():
        reason = blocker(key)
        if reason:
            reasons.append(reason)
    return reasons

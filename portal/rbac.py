"""The permission catalogue and the built-in roles, as Intune defines them.

A permission is ``"<area>.<action>"``. Roles hold a list of permissions; role
assignments give a role to members over a set of scope tags.
"""

from __future__ import annotations

from dataclasses import dataclass

AREAS: dict[str, str] = {
    "certificates": "Certificates",
    "profiles": "Device configurations",
    "connectors": "Certificate connectors and keys",
    "directory": "Users, groups and devices",
    "audit": "Audit data",
    "roles": "Roles and scope tags",
}

ACTIONS: dict[str, tuple[str, ...]] = {
    "certificates": ("read", "create", "update", "delete"),
    "profiles": ("read", "create", "update", "delete", "assign", "resend"),
    "connectors": ("read", "create", "update", "delete"),
    "directory": ("read", "create", "update", "delete"),
    "audit": ("read",),
    "roles": ("read", "create", "update", "delete", "assign"),
}

# Objects in these areas carry scope tags; the others are tenant-wide.
SCOPED_AREAS = frozenset({"certificates", "profiles", "connectors"})

ALL_PERMISSIONS: tuple[str, ...] = tuple(
    f"{area}.{action}" for area, actions in ACTIONS.items() for action in actions
)


def is_permission(value: str) -> bool:
    return value in ALL_PERMISSIONS


def _all(area: str) -> list[str]:
    return [f"{area}.{action}" for action in ACTIONS[area]]


@dataclass(frozen=True)
class BuiltInRole:
    key: str
    name: str
    description: str
    permissions: tuple[str, ...]
    requires_mfa: bool


BUILT_IN_ROLES: tuple[BuiltInRole, ...] = (
    BuiltInRole(
        key="intune_administrator",
        name="Intune Administrator",
        description="Manages certificates, profiles, connectors, keys and the directory.",
        permissions=tuple(
            _all("certificates")
            + _all("profiles")
            + _all("connectors")
            + _all("directory")
            + ["audit.read", "roles.read"]
        ),
        requires_mfa=True,
    ),
    BuiltInRole(
        key="policy_and_profile_manager",
        name="Policy and Profile Manager",
        description="Creates, assigns and reports on profiles; reads certificates and the directory.",
        permissions=(
            *_all("profiles"),
            "certificates.read",
            "connectors.read",
            "directory.read",
            "audit.read",
        ),
        requires_mfa=False,
    ),
    BuiltInRole(
        key="help_desk_operator",
        name="Help Desk Operator",
        description=(
            "Looks up users, their certificates, devices and profile status, and resends a user's "
            "certificates to one device. Changes nothing else."
        ),
        permissions=(
            "certificates.read",
            "profiles.read",
            "profiles.resend",
            "connectors.read",
            "directory.read",
            "audit.read",
        ),
        requires_mfa=False,
    ),
    BuiltInRole(
        key="read_only_operator",
        name="Read Only Operator",
        description="Views certificates, profiles, connectors, the directory and audit data.",
        permissions=("certificates.read", "profiles.read", "connectors.read", "directory.read", "audit.read"),
        requires_mfa=False,
    ),
    BuiltInRole(
        key="intune_role_administrator",
        name="Intune Role Administrator",
        description="Manages roles, role assignments and scope tags. The only built-in role that can grant permissions.",
        permissions=(*_all("roles"), "audit.read", "directory.read"),
        requires_mfa=True,
    ),
)

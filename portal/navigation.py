"""The left navigation, as in Endpoint Manager; items show when the admin holds their permission."""

from __future__ import annotations

from dataclasses import dataclass

from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse

from portal import access
from portal.access import AnyUser


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url_name: str
    permission: str | None
    icon: str


NAVIGATION: tuple[NavItem, ...] = (
    NavItem("home", "Home", "home", None, "home"),
    NavItem("certificates", "Certificates", "certs:list", "certificates.read", "certificate"),
    NavItem("profiles", "Configuration profiles", "profiles:list", "profiles.read", "profile"),
    NavItem("devices", "Devices", "directory:devices", "directory.read", "device"),
    NavItem("users", "Users", "directory:users", "directory.read", "user"),
    NavItem("groups", "Groups", "directory:groups", "directory.read", "group"),
    NavItem("tenant", "Tenant administration", "tenant_admin", None, "tenant"),
    NavItem(
        "troubleshoot", "Troubleshooting + support", "directory:troubleshoot", "directory.read", "support"
    ),
)


# Navigation by viewer (``access.viewer_key``): the same for every admin of the same roles and tags.
_ITEMS: dict[str, list[dict[str, str]]] = {}


def items_for(user: AnyUser) -> list[dict[str, str]]:
    key = access.viewer_key(user)
    items = _ITEMS.get(key)
    if items is None:
        if len(_ITEMS) >= 512:
            _ITEMS.clear()
        items = _ITEMS[key] = _items_for(user)
    return items


def _items_for(user: AnyUser) -> list[dict[str, str]]:
    items = []
    for item in NAVIGATION:
        if item.permission and not access.has_perm(user, item.permission):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue  # the section's app is not installed in this build
        # The icon's address resolved here, once per viewer and process, not per page view.
        icon = f"{static('icons.svg')}#{item.icon}"
        items.append({"key": item.key, "label": item.label, "url": url, "icon": item.icon, "icon_href": icon})
    return items


@dataclass(frozen=True)
class Tile:
    label: str
    description: str
    url_name: str
    permission: str


TENANT_ADMIN_TILES: tuple[Tile, ...] = (
    Tile("Roles", "Built-in and custom roles, role assignments and administrators.", "roles", "roles.read"),
    Tile("Scope tags", "Tags that limit which objects an administrator sees.", "scope_tags", "roles.read"),
    Tile(
        "Audit logs", "Every change made in the portal, with old and new values.", "audit_logs", "audit.read"
    ),
    Tile("Encryption keys", "Public keys that protect PFX passwords.", "certs:keys", "connectors.read"),
    Tile(
        "Certificate connectors",
        "On-premises connectors and their health.",
        "connectors:list",
        "connectors.read",
    ),
    Tile("Microsoft Intune", "Tenant connection to Microsoft Graph.", "graph:connection", "connectors.read"),
)


def tenant_admin_tiles(user: AnyUser) -> list[dict[str, str]]:
    tiles = []
    for tile in TENANT_ADMIN_TILES:
        if not access.has_perm(user, tile.permission):
            continue
        try:
            url = reverse(tile.url_name)
        except NoReverseMatch:
            continue
        tiles.append({"label": tile.label, "description": tile.description, "url": url})
    return tiles

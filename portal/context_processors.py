from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from portal import access, navigation
from portal.models import User


def shell(request: HttpRequest) -> dict[str, Any]:
    # Error pages for requests refused before the authentication middleware ran (a bad Host
    # header) have no user yet: they get the anonymous shell.
    user = getattr(request, "user", None)
    if not isinstance(user, User) or not user.is_authenticated:
        return {"entra_sign_in_enabled": settings.ENTRA_SIGN_IN_ENABLED}
    return {
        "nav_items": navigation.items_for(user),
        "admin_roles": admin_roles(user),
        "tenant_name": settings.PORTAL_TENANT_NAME,
        "entra_sign_in_enabled": settings.ENTRA_SIGN_IN_ENABLED,
    }


def admin_roles(user: User) -> list[str]:
    """The role names the shell shows for a signed-in admin (a superuser without roles: Global Administrator)."""
    # The assignments the permission checks of this request read anyway.
    roles = access.role_names(user)
    if user.is_superuser and not roles:
        roles = ["Global Administrator"]
    return roles

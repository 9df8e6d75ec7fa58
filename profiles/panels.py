"""The Certificate profiles section of a directory user's page."""

from __future__ import annotations

from typing import Any

from directory.models import DirectoryUser
from portal import access
from portal.http import AuthenticatedHttpRequest


def user_profiles_panel(request: AuthenticatedHttpRequest, user: DirectoryUser) -> dict[str, Any] | None:
    from profiles.models import Profile
    from profiles.reports import reaching_profiles_for_user

    if not access.has_perm(request.user, "profiles.read"):
        return None
    visible = access.scoped(Profile.objects.all(), request.user)
    # Most profiles of a tenant do not reach a given user: one count, with the reasons a click away.
    reaching, not_reaching = reaching_profiles_for_user(user, visible)
    return {"user_profiles": reaching, "not_reaching": not_reaching}

"""The Certificate profiles section of a directory user's page."""

from __future__ import annotations

from typing import Any

from directory.models import DirectoryUser
from portal import access
from portal.http import AuthenticatedHttpRequest


def user_profiles_panel(request: AuthenticatedHttpRequest, user: DirectoryUser) -> dict[str, Any] | None:
    from profiles.models import Profile
    from profiles.reports import profiles_for_user

    if not access.has_perm(request.user, "profiles.read"):
        return None
    # Only what the section shows of a profile; reasons only for the profiles it lists.
    visible = access.scoped(Profile.objects.only("pk", "code", "name", "platform"), request.user)
    results = profiles_for_user(user, profiles=visible, explain_all=False)
    # Most profiles of a tenant do not reach a given user: one count, with the reasons a click away.
    reaching = [r for r in results if r.reaches]
    return {"user_profiles": reaching, "not_reaching": len(results) - len(reaching)}

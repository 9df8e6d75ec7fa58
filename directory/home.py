"""The directory's section of Home (registered in DirectoryConfig.ready(), see portal/home.py)."""

from __future__ import annotations

from typing import Any

from directory.models import Device, DirectoryUser, Group
from portal import access
from portal.http import AuthenticatedHttpRequest


def counts_section(request: AuthenticatedHttpRequest) -> dict[str, Any] | None:
    if not access.has_perm(request.user, "directory.read"):
        return None
    return {
        "counts": {
            "users": DirectoryUser.objects.filter(removed_at=None).count(),
            "groups": Group.objects.filter(removed_at=None).count(),
            "devices": Device.objects.filter(removed_at=None).count(),
        }
    }

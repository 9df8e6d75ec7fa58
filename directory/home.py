"""The directory's section of Home (registered in DirectoryConfig.ready(), see portal/home.py)."""

from __future__ import annotations

from typing import Any

from directory.models import Device, DirectoryUser, Group
from portal import access, summaries
from portal.http import AuthenticatedHttpRequest


def _directory_counts() -> dict[str, int]:
    return {
        "users": DirectoryUser.objects.filter(removed_at=None).count(),
        "groups": Group.objects.filter(removed_at=None).count(),
        "devices": Device.objects.filter(removed_at=None).count(),
    }


def counts_section(request: AuthenticatedHttpRequest) -> dict[str, Any] | None:
    if not access.has_perm(request.user, "directory.read"):
        return None
    # Whole-table counts, the same for every admin who reads the directory (portal.summaries).
    return {"counts": summaries.kept_for(request, "home:directory", _directory_counts)}

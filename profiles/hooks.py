"""What apps above profiles add to its pages and hear of its changes, registered from their ``AppConfig.ready()``.

profiles imports no app above it. The Graph app adds a section to a profile's overview (whether the
profile is in Intune)::

    register_profile_section(ProfileSection("graph/_profile_sync.html", profile_section, order=10))

and listens to ``profile_changed`` / ``profile_deleting`` (sent inside the transaction that changes
or deletes a profile) to write the change to Intune once it commits.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

from portal.http import AuthenticatedHttpRequest
from portal.lib import sections
from profiles.models import Profile


class ProfileSection(sections.Section[[AuthenticatedHttpRequest, Profile]]):
    """A section of a profile's overview page."""


_PROFILE_SECTIONS: dict[str, ProfileSection] = {}

# kwargs: profile (the created or changed profile, saved).
profile_changed = Signal()
# kwargs: profile (about to be deleted; its row still exists).
profile_deleting = Signal()


def register_profile_section(section: ProfileSection) -> None:
    """Add (or replace, by template name) a section of the profile overview."""
    _PROFILE_SECTIONS[section.template] = section


def profile_sections(request: AuthenticatedHttpRequest, profile: Profile) -> list[dict[str, Any]]:
    return sections.shown(_PROFILE_SECTIONS.values(), request, profile)

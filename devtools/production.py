"""Demo data and demo accounts are never created in production.

The demo administrators share a published password and TOTP secret, so every command and
function that creates them refuses with PORTAL_ENV=production.
"""

from __future__ import annotations

from django.conf import settings

from portal.lib.refusal import Refused


def refuse_in_production(what: str) -> None:
    """Refuse with ``demo_in_production`` when PORTAL_ENV=production."""
    if settings.PRODUCTION:
        raise Refused(
            "demo_in_production",
            f"{what} is refused with PORTAL_ENV=production: the demo administrators share a "
            "published password and TOTP secret, so anyone could sign in as them. For a demo on your own "
            "computer, run it with PORTAL_ENV=development (with docker-compose: add docker-compose.demo.yml, "
            'see README.md, "A demo with docker-compose"). Never on a production database.',
        )

"""Demo data and demo accounts are never created in production.

The demo administrators share a published password and TOTP secret, so every command and
function that creates them refuses with PORTAL_ENV=production.
"""

from __future__ import annotations

from django.conf import settings


class DemoRefusedInProduction(Exception):
    """The demo tenant is never created with PORTAL_ENV=production."""

    code = "demo_in_production"

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} is refused with PORTAL_ENV=production: the demo administrators share a "
            "published password and TOTP secret, so anyone could sign in as them. For a demo on your own "
            "computer, run it with PORTAL_ENV=development (with docker-compose: add docker-compose.demo.yml, "
            'see README.md, "A demo with docker-compose"). Never on a production database.'
        )


def refuse_in_production(what: str) -> None:
    if settings.PRODUCTION:
        raise DemoRefusedInProduction(what)

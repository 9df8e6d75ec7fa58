"""``manage.py device_enrolment --secret`` or ``--token DEVICE``: credentials for enrolling devices.

``--secret`` creates a tenant enrolment secret (for a device management tool that enrols many
devices, each naming its Intune device id); ``--token`` issues a one-time token for one device
(by name or Intune device id). Each is printed once; only its hash is kept. ``--revoke-secrets``
revokes every secret, so enrolling needs a new one.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from delivery import credentials
from delivery.models import EnrollmentSecret
from directory.models import Device
from portal.audit import Actor
from portal.lib import refusal

ACTOR = "manage.py device_enrolment"


class Command(BaseCommand):
    help = "Create a tenant device enrolment secret, or a one-time enrolment token for one device."

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--secret", action="store_true", help="Create a tenant enrolment secret.")
        group.add_argument("--token", metavar="DEVICE", help="Issue a one-time token for this device.")
        group.add_argument("--revoke-secrets", action="store_true", help="Revoke every enrolment secret.")
        parser.add_argument(
            "--hours", type=int, default=credentials.TOKEN_HOURS, help="How long a token is valid."
        )

    @refusal.stops_command
    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system(ACTOR)
        if options["secret"]:
            self.stdout.write(credentials.secret_create(actor)[1])
        elif options["revoke_secrets"]:
            rows = list(EnrollmentSecret.objects.filter(revoked_at=None))
            for row in rows:
                credentials.secret_revoke(actor, row)
            self.stdout.write(f"{len(rows)} enrolment secret(s) revoked.")
        else:
            _row, token = credentials.token_issue(
                actor, self._device(options["token"]), hours=options["hours"]
            )
            self.stdout.write(token)

    def _device(self, name: str) -> Device:
        match = Q(name__iexact=name)
        with contextlib.suppress(ValueError):
            match |= Q(device_id=uuid.UUID(name))
        found = list(Device.objects.filter(match, removed_at=None)[:2])
        if len(found) != 1:
            raise CommandError(f"{'No' if not found else 'More than one'} current device is named {name!r}.")
        return found[0]

"""Print the current sign-in code for the demo accounts' authenticator.

It computes the code from the published demo secret only, so it reveals nothing
about real accounts, which have secrets of their own.
"""

from __future__ import annotations

import time
from typing import Any

from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core.management.base import BaseCommand

from devtools.admins import DEMO_TOTP_SECRET


class Command(BaseCommand):
    help = "Print the current TOTP code of the demo administrators (secret printed by make run)."

    def handle(self, *args: Any, **options: Any) -> None:
        counter = int(time.time()) // mfa_settings.TOTP_PERIOD
        self.stdout.write(str(format_hotp_value(hotp_value(DEMO_TOTP_SECRET, counter))))

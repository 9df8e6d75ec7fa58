"""``manage.py seed_demo``: build (or complete) the Contoso demo tenant and print the demo sign-ins."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from devtools.admins import DEMO_TOTP_SECRET, demo_sign_ins, domain, mfa_required_emails
from devtools.production import refuse_in_production
from devtools.profiles import seed_demo_profiles
from devtools.tenant import seed
from portal.lib import refusal


class Command(BaseCommand):
    help = "Create the demo tenant's users, groups, devices, scope tags and demo admins. Safe to run again."

    @refusal.stops_command
    def handle(self, *args: Any, **options: Any) -> None:
        refuse_in_production("seed_demo")
        started = time.monotonic()
        result = seed()
        seed_demo_profiles()
        if options["verbosity"] < 1:
            return
        elapsed = time.monotonic() - started
        created = (
            f"{result.users} users, {result.groups} groups, {result.devices} devices, "
            f"{result.memberships} memberships, {result.admins} admins"
        )
        self.stdout.write(f"Demo tenant {domain()}: created {created} in {elapsed:.1f} s.")
        self.stdout.write("")
        self.stdout.write(self.format_sign_ins())

    def format_sign_ins(self) -> str:
        mfa = mfa_required_emails()
        enforced = bool(settings.PORTAL_ENFORCE_MFA)
        rows = [("E-mail", "Password", "Role", "MFA")]
        for email, password, role in demo_sign_ins():
            rows.append((email, password, role, "TOTP" if email in mfa else "no"))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["Demo sign-ins:"]
        for row in rows:
            lines.append(("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))).rstrip())
        lines.append("")
        lines.append(
            f"Accounts marked TOTP have an authenticator with the demo secret {DEMO_TOTP_SECRET}: add it to any "
            "authenticator app (time-based, SHA-1, 6 digits, 30 s) to get the sign-in code."
        )
        if not enforced:
            lines.append(
                "PORTAL_ENFORCE_MFA is off, but accounts with an authenticator are still asked for a code."
            )
        return "\n".join(lines)

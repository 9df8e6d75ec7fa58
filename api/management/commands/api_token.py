"""``python manage.py api_token --email admin@contoso.com --name nightly --days 30``: a new API token.

For bootstrapping automation on the server (the page is Account > API tokens). Prints only the
secret, so a script can capture it; the token acts with that admin's roles and scope tags, and its
creation is audited like the page's.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api import tokens
from portal.audit import Actor
from portal.lib.refusal import stops_command
from portal.models import User


class Command(BaseCommand):
    help = "Create an API token for an administrator and print its secret."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True, help="the administrator the token acts for")
        parser.add_argument("--name", default="command line", help="the token's name")
        parser.add_argument("--days", type=int, default=30, help="days until it expires")

    @stops_command
    def handle(self, *args: Any, **options: Any) -> None:
        admin = User.objects.filter(email__iexact=options["email"].strip(), is_active=True).first()
        if admin is None:
            raise CommandError("unknown_admin: no active administrator has this e-mail address")
        _, secret = tokens.token_create(
            Actor.system("api_token command"), user=admin, name=options["name"], days=options["days"]
        )
        self.stdout.write(secret)

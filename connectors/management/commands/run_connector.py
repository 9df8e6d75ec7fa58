"""``manage.py run_connector --server URL --enroll TOKEN --state-dir DIR``: the connector agent.

It shares only the repository with the portal: no database access, no models.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from connectors.agent.__main__ import build_parser, main


class Command(BaseCommand):
    help = "Run the certificate connector agent (holds the private key; talks to the portal over HTTP)."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        for action in build_parser()._actions:
            if action.dest != "help":
                parser._add_action(action)
        return parser

    def handle(self, *args: Any, **options: Any) -> None:
        argv: list[str] = []
        for action in build_parser()._actions:
            value = options.get(action.dest)
            if action.dest == "help" or value in (None, False, ""):
                continue
            flag = action.option_strings[-1]
            argv += [flag] if value is True else [flag, str(value)]
        code = main(argv)
        if code:
            raise CommandError(f"the connector stopped (exit {code})", returncode=code)

"""``manage.py pfx``: inspect PFX files and build Intune upload bodies from the command line.

    pfx inspect FILE [--password-stdin | --password-env VAR] [--upn UPN] [--purpose P] [--json]
    pfx encrypt FILE --upn UPN --public-key KEYFILE --provider NAME --key-name NAME
                [--purpose smimeEncryption] [--padding oaepSha512] [--password-stdin | --password-env VAR]

Each subcommand is a ``handle_<name>`` method, so new ones (``import``) slot in beside them.
Bad input prints ``{"ok": false, "problems": [...]}`` and exits 1. The password is read from
stdin or an environment variable, never from the command line, and never printed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from certs.import_cli import add_import_arguments, run_import
from certs.pfx import (
    DEFAULT_PADDING,
    PURPOSES,
    Inspection,
    Problem,
    ProblemError,
    build_graph_body,
    encrypt_password,
    inspect_pfx,
    load_public_key,
)
from certs.pfx.limits import max_file_bytes


class Command(BaseCommand):
    help = "Inspect PFX/PKCS#12 files and build the Graph userPFXCertificate body."

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(dest="subcommand", required=True)

        inspect = subcommands.add_parser("inspect", help="Show what a PFX file holds and any problems.")
        self._add_common(inspect)
        inspect.add_argument("--upn", help="Warn when the certificate does not name this user.")
        inspect.add_argument("--json", action="store_true", help="Print JSON.")

        encrypt = subcommands.add_parser("encrypt", help="Print the Graph userPFXCertificate JSON body.")
        self._add_common(encrypt)
        encrypt.add_argument("--upn", required=True)
        encrypt.add_argument("--public-key", required=True, help="PEM public key or CNG RSAPUBLICBLOB file.")
        encrypt.add_argument("--provider", required=True, help="The connector's key storage provider name.")
        encrypt.add_argument("--key-name", required=True, help="The connector's key name.")
        encrypt.add_argument(
            "--padding", default=DEFAULT_PADDING, help="oaepSha512 (default), oaepSha384, oaepSha256."
        )

        batch = subcommands.add_parser(
            "import", help="Import many PFX files listed in a CSV manifest, through the import pipeline."
        )
        add_import_arguments(batch)

    @staticmethod
    def _add_common(parser: CommandParser) -> None:
        parser.add_argument("file", help="The .pfx/.p12 file.")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--password-stdin", action="store_true", help="Read the password from stdin.")
        source.add_argument("--password-env", metavar="VAR", help="Read the password from this variable.")
        parser.add_argument("--purpose", type=str.strip, help=f"One of {', '.join(PURPOSES)}.")
        parser.add_argument(
            "--password-encoding",
            choices=["strict", "reference"],
            default="strict",
            help="strict: ASCII passwords only (default). reference: PFXImport's Latin-1 byte encoding.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        handler = getattr(self, f"handle_{options['subcommand']}")
        try:
            handler(**options)
        except ProblemError as exc:
            self._fail([exc.problem])

    def handle_import(self, **options: Any) -> None:
        status = run_import(options, self.stdout, self.stderr)  # type: ignore[arg-type]
        if status:
            sys.exit(status)

    def handle_inspect(self, **options: Any) -> None:
        data = self._read_file(options["file"])
        result = inspect_pfx(
            data,
            self._password(options),
            upn=options["upn"],
            purpose=options["purpose"],
            password_encoding=options["password_encoding"],
        )
        if options["json"]:
            self.stdout.write(json.dumps(result.to_json(), indent=2))
        else:
            self._print_text(result)
        if not result.ok:
            sys.exit(1)

    def handle_encrypt(self, **options: Any) -> None:
        data = self._read_file(options["file"])
        public_key = load_public_key(self._read_key(options["public_key"]))
        password = self._password(options)
        result = inspect_pfx(
            data,
            password,
            upn=options["upn"],
            purpose=options["purpose"],
            public_key=public_key,
            padding=options["padding"],
            password_encoding=options["password_encoding"],
        )
        if not result.ok:
            self._fail(list(result.problems))
        for problem in result.problems:
            self.stderr.write(f"warning: {problem.code}: {problem.message}")
        encrypted = encrypt_password(
            password, public_key, options["padding"], encoding=options["password_encoding"]
        )
        body = build_graph_body(
            result,
            data,
            encrypted_password=encrypted,
            upn=options["upn"],
            provider_name=options["provider"],
            key_name=options["key_name"],
            purpose=options["purpose"] or "unassigned",
            padding=options["padding"],
        )
        self.stdout.write(json.dumps(body, indent=2))

    def _fail(self, problems: list[Problem]) -> None:
        self.stdout.write(json.dumps({"ok": False, "problems": [p.to_json() for p in problems]}, indent=2))
        sys.exit(1)

    def _read_file(self, name: str) -> bytes:
        path = Path(name)
        try:
            if path.stat().st_size > max_file_bytes():
                raise ProblemError("file_too_large")
            return path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {name}: {exc.strerror}") from exc

    def _read_key(self, name: str) -> bytes:
        try:
            with Path(name).open("rb") as handle:
                return handle.read(64 * 1024)
        except OSError as exc:
            raise CommandError(f"Cannot read {name}: {exc.strerror}") from exc

    @staticmethod
    def _password(options: dict[str, Any]) -> str | None:
        if options["password_stdin"]:
            line = sys.stdin.readline()
            return line[:-1] if line.endswith("\n") else line
        if options["password_env"]:
            value = os.environ.get(options["password_env"])
            if value is None:
                raise CommandError(f"The environment variable {options['password_env']} is not set.")
            return value
        return None

    def _print_text(self, result: Inspection) -> None:
        data = result.to_json()
        for name in ("thumbprint", "subject", "issuer", "serial", "not_before", "not_after"):
            if data[name]:
                self.stdout.write(f"{name:13} {data[name]}")
        for name in ("emails", "upns", "ekus"):
            if data[name]:
                self.stdout.write(f"{name:13} {', '.join(data[name])}")
        if data["key"]:
            self.stdout.write(f"{'key':13} {' '.join(str(v) for v in data['key'].values())}")
        self.stdout.write(f"{'chain_length':13} {data['chain_length']}")
        for name in ("kdf", "mac"):
            if data[name]:
                self.stdout.write(f"{name:13} {' '.join(str(v) for v in data[name].values())}")
        for problem in result.problems:
            self.stdout.write(f"{problem.severity}: {problem.code}: {problem.message}")
        self.stdout.write("ok" if result.ok else "not ok")

"""``pfx <verb>``: the verbs of Microsoft's PFXImport cmdlets, against the PFX Portal API.

The portal's address comes from ``--url`` or ``PFX_PORTAL_URL``; the API token from the environment
variable named by ``--token-env`` (``PFX_PORTAL_TOKEN``) or from ``--token-file``, never from the
command line (which other users of the machine can read). A PFX password likewise comes only from
standard input (``--password-stdin``), a file (``--password-file``) or an environment variable
(``--password-env``). Exit codes: see ``pfx --help``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from pfx_portal_cli import client as api
from pfx_portal_cli.client import ApiError, Client, Multipart

EPILOG = """exit codes:
  0  success
  1  the import finished but some rows failed (see the rows)
  2  usage: bad arguments, unreadable file, no password
  3  refused by the portal (the problem code is printed)
  4  not authenticated or not allowed (token revoked or expired, role or scope tag missing)
  5  not found
  6  timed out waiting, or still rate limited
  7  portal unreachable or failing
"""

PFX_SUFFIXES = (".pfx", ".p12")
MANIFEST = "manifest.csv"


class Usage(Exception):
    pass


def _secret(args: argparse.Namespace, what: str = "password") -> str:
    if getattr(args, "password_stdin", False):
        value = sys.stdin.readline().rstrip("\r\n")
    elif getattr(args, "password_file", None):
        try:
            value = Path(args.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise Usage(f"cannot read the {what} file: {exc.strerror}") from None
    elif getattr(args, "password_env", None):
        value = os.environ.get(args.password_env, "")
    else:
        raise Usage(f"give the {what} with --password-stdin, --password-file or --password-env")
    if not value:
        raise Usage(f"the {what} is empty")
    return value


def _client(args: argparse.Namespace) -> Client:
    url = args.url or os.environ.get("PFX_PORTAL_URL", "")
    if not url:
        raise Usage("give the portal's address with --url or PFX_PORTAL_URL")
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise Usage(f"cannot read the token file: {exc.strerror}") from None
    else:
        token = os.environ.get(args.token_env, "").strip()
    if not token:
        raise Usage(f"set the API token in {args.token_env} or give --token-file")
    return Client(url, token)


def _print(args: argparse.Namespace, data: Any, lines: list[str]) -> None:
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.writelines(line + "\n" for line in lines)


def _cert_line(c: dict[str, Any]) -> str:
    return f"{c['thumbprint']}  {c['upn']}  {c['purpose']}  expires {c['not_after'][:10]}  {c['intune_state']}  {c['code']}"


# --- verbs -------------------------------------------------------------------------------------


def new_user_pfx(args: argparse.Namespace) -> int:
    """Add a PFX file and its row to a folder's manifest, ready for ``import-user-pfx --folder``."""
    source = Path(args.file)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise Usage(f"cannot read {source}: {exc.strerror}") from None
    password = _secret(args)
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = args.name or source.name
    (folder / name).write_bytes(data)
    manifest = folder / MANIFEST
    new = not manifest.exists()
    # The manifest holds passwords: readable by its owner only.
    fd = os.open(manifest, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        if new:
            writer.writerow(["filename", "upn", "password", "purpose"])
        writer.writerow([name, args.upn or "", password, args.purpose])
    _print(args, {"folder": str(folder), "filename": name}, [f"added {name} to {manifest}"])
    return api.OK


def _import_one(args: argparse.Namespace, c: Client) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Usage(f"cannot read {path}: {exc.strerror}") from None
    body = Multipart(
        fields=[
            ("password", _secret(args)),
            ("upn", args.upn or ""),
            ("purpose", args.purpose),
            ("on_duplicate", "update" if args.update else "skip"),
        ]
        + ([("encryption_key", args.key)] if args.key else []),
        files=[("file", path.name, data)],
    )
    row = c.call("POST", "/certificates", multipart=body)
    problem = f" {row['problem_code']}: {row['problem_message']}" if row["problem_code"] else ""
    _print(args, row, [f"{row['state']:<10} {row['filename']} {row['upn']} {row['thumbprint']}{problem}"])
    return api.OK if row["state"] in ("stored", "skipped") else api.ROWS_FAILED


def _folder_files(folder: Path) -> list[tuple[str, bytes]]:
    zips = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".zip")
    if zips:
        return [(zips[0].name, zips[0].read_bytes())]
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix.lower() in PFX_SUFFIXES]
    if not files:
        raise Usage(f"no .pfx, .p12 or .zip files in {folder}")
    if len(files) > 50:
        # Many files go as one ZIP: one request part instead of thousands.
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for p in files:
                archive.writestr(p.relative_to(folder).as_posix(), p.read_bytes())
        return [("files.zip", buffer.getvalue())]
    return [(p.relative_to(folder).as_posix(), p.read_bytes()) for p in files]


def _progress(batch: dict[str, Any]) -> None:
    total = max(batch["total"], 1)
    done = batch["finished"]
    width = 30
    filled = int(width * done / total)
    sys.stderr.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{batch['total']} {batch['state']}   "
    )
    sys.stderr.flush()


def _wait(c: Client, code: str, timeout: float, quiet: bool) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        batch: dict[str, Any] = c.call("GET", f"/imports/{code}", query={"state": "queued"})
        if not quiet:
            _progress(batch)
        if batch["state"] != "running":
            if not quiet:
                sys.stderr.write("\n")
            return batch
        if time.monotonic() > deadline:
            raise ApiError(0, "timeout", f"the import {code} is still running; are the portal's workers up?")
        time.sleep(1)


def _rows(c: Client, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        batch = c.call("GET", f"/imports/{code}", query={"cursor": cursor})
        rows.extend(batch["rows"])
        cursor = batch["next_cursor"]
        if not cursor:
            return batch, rows


def _import_folder(args: argparse.Namespace, c: Client) -> int:
    folder = Path(args.folder)
    manifest = Path(args.manifest) if args.manifest else folder / MANIFEST
    try:
        manifest_data = manifest.read_bytes()
        uploads = [(n, d) for n, d in _folder_files(folder)]
    except OSError as exc:
        raise Usage(f"cannot read {exc.filename}: {exc.strerror}") from None
    body = Multipart(
        fields=[
            ("dry_run", "true" if args.dry_run else "false"),
            ("on_duplicate", "update" if args.update else "skip"),
        ]
        + ([("encryption_key", args.key)] if args.key else []),
        files=[("manifest_file", manifest.name, manifest_data)] + [("files", n, d) for n, d in uploads],
    )
    batch = c.call("POST", "/imports", multipart=body)
    if args.no_wait:
        _print(args, batch, [f"import {batch['code']} started ({batch['total']} files)"])
        return api.OK
    _wait(c, batch["code"], args.timeout, args.json or args.quiet)
    batch, rows = _rows(c, batch["code"])
    ok = {"stored", "skipped"} | ({"validated"} if batch["dry_run"] else set())
    lines = [
        f"{r['state']:<10} {r['filename']} {r['upn']} {r['thumbprint']}"
        + (f" {r['problem_code']}: {r['problem_message']}" if r["problem_code"] else "")
        for r in rows
    ]
    counts = " ".join(f"{k}={v}" for k, v in batch["counts"].items() if v)
    lines.append(f"import {batch['code']}: {counts} total={batch['total']}")
    _print(args, {**batch, "rows": rows}, lines)
    return api.OK if all(r["state"] in ok for r in rows) else api.ROWS_FAILED


def import_user_pfx(args: argparse.Namespace) -> int:
    c = _client(args)
    if bool(args.file) == bool(args.folder):
        raise Usage("give one PFX file, or --folder with a manifest")
    return _import_one(args, c) if args.file else _import_folder(args, c)


def _find(c: Client, args: argparse.Namespace) -> list[dict[str, Any]]:
    if not (args.upn or args.thumbprint):
        raise Usage("give --upn or --thumbprint")
    return c.pages("/certificates", {"upn": args.upn, "thumbprint": args.thumbprint, "purpose": args.purpose})


def get_user_pfx(args: argparse.Namespace) -> int:
    found = _find(_client(args), args)
    _print(args, found, [_cert_line(x) for x in found])
    return api.OK if found else api.NOT_FOUND


def remove_user_pfx(args: argparse.Namespace) -> int:
    c = _client(args)
    found = [c.call("GET", f"/certificates/{args.code}")] if args.code else _find(c, args)
    if not found:
        _print(args, [], ["no such certificate"])
        return api.NOT_FOUND
    for cert in found:
        c.call("DELETE", f"/certificates/{cert['code']}")
    _print(args, found, [f"removed {_cert_line(x)}" for x in found])
    return api.OK


def add_encryption_key(args: argparse.Namespace) -> int:
    c = _client(args)
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise Usage(f"cannot read {args.file}: {exc.strerror}") from None
    body = Multipart(
        fields=[
            ("provider_name", args.provider_name),
            ("key_name", args.key_name),
            ("default_padding", args.padding),
            ("make_default", "true" if args.make_default else "false"),
        ],
        files=[("key_file", Path(args.file).name, data)],
    )
    key = c.call("POST", "/encryption-keys", multipart=body)
    _print(
        args, key, [f"added {key['provider_name']} / {key['key_name']} {key['fingerprint']} {key['code']}"]
    )
    return api.OK


def get_encryption_keys(args: argparse.Namespace) -> int:
    keys = _client(args).call("GET", "/encryption-keys")
    lines = [
        f"{'*' if k['is_default'] else ' '} {k['provider_name']} / {k['key_name']}  RSA {k['size']}  {k['fingerprint'][:16]}  {k['code']}"
        for k in keys
    ]
    _print(args, keys, lines)
    return api.OK


def export_public_key(args: argparse.Namespace) -> int:
    c = _client(args)
    if args.code:
        key = c.call("GET", f"/encryption-keys/{args.code}")
    else:
        key = next((k for k in c.call("GET", "/encryption-keys") if k["is_default"]), None)
        if key is None:
            raise ApiError(404, "no_key", "no default encryption key")
    if args.out:
        Path(args.out).write_text(key["public_key_pem"], encoding="ascii")
        _print(args, key, [f"wrote {args.out}"])
    elif args.json:
        sys.stdout.write(json.dumps(key, indent=2) + "\n")
    else:
        sys.stdout.write(key["public_key_pem"])
    return api.OK


# --- arguments ---------------------------------------------------------------------------------


def _passwords(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--password-stdin", action="store_true", help="read the PFX password from standard input")
    g.add_argument("--password-file", metavar="PATH", help="read the PFX password from a file")
    g.add_argument(
        "--password-env", metavar="NAME", help="read the PFX password from this environment variable"
    )


PURPOSES = ("unassigned", "smimeEncryption", "smimeSigning")


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="the portal's address (default: PFX_PORTAL_URL)")
    common.add_argument(
        "--token-env", default="PFX_PORTAL_TOKEN", help="environment variable holding the API token"
    )
    common.add_argument("--token-file", help="file holding the API token")
    common.add_argument("--json", action="store_true", help="print JSON")
    top = argparse.ArgumentParser(
        prog="pfx", description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    verbs = top.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser(
        "new-user-pfx", parents=[common], help="add a PFX file and its manifest row to a folder"
    )
    p.add_argument("file")
    p.add_argument("--folder", required=True)
    p.add_argument("--upn", help="the user (default: taken from the certificate)")
    p.add_argument("--purpose", choices=PURPOSES, default="smimeEncryption")
    p.add_argument("--name", help="file name in the folder (default: the file's)")
    _passwords(p)
    p.set_defaults(run=new_user_pfx)

    p = verbs.add_parser(
        "import-user-pfx", parents=[common], help="import one file, or a folder with a manifest"
    )
    p.add_argument("file", nargs="?")
    p.add_argument("--folder", help="folder of PFX files (or one ZIP) and manifest.csv")
    p.add_argument("--manifest", help="the manifest (default: FOLDER/manifest.csv)")
    p.add_argument("--upn")
    p.add_argument("--purpose", choices=PURPOSES, default="smimeEncryption")
    p.add_argument("--key", help="encryption key code (default: the default key)")
    p.add_argument("--update", action="store_true", help="update certificates already imported")
    p.add_argument("--dry-run", action="store_true", help="check everything, store nothing")
    p.add_argument("--no-wait", action="store_true", help="start the import and return")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the import")
    _passwords(p)
    p.set_defaults(run=import_user_pfx)

    for verb, run, text in (
        ("get-user-pfx", get_user_pfx, "list a user's certificates, or find one by thumbprint"),
        ("remove-user-pfx", remove_user_pfx, "remove certificates (here and in Intune)"),
    ):
        p = verbs.add_parser(verb, parents=[common], help=text)
        p.add_argument("--upn")
        p.add_argument("--thumbprint")
        p.add_argument("--purpose", choices=PURPOSES)
        if verb == "remove-user-pfx":
            p.add_argument("--code", help="the certificate's code")
        p.set_defaults(run=run)

    p = verbs.add_parser(
        "add-encryption-key", parents=[common], help="add a connector's public key (PEM or CNG blob)"
    )
    p.add_argument("file")
    p.add_argument("--provider-name", default="Microsoft Software Key Storage Provider")
    p.add_argument("--key-name", default="PFXEncryptionKey")
    p.add_argument("--padding", choices=("oaepSha512", "oaepSha384", "oaepSha256"), default="oaepSha512")
    p.add_argument("--make-default", action="store_true")
    p.set_defaults(run=add_encryption_key)

    p = verbs.add_parser("get-encryption-keys", parents=[common], help="list the encryption keys")
    p.set_defaults(run=get_encryption_keys)

    p = verbs.add_parser(
        "export-public-key", parents=[common], help="write an encryption key's public key (PEM)"
    )
    p.add_argument("--code", help="the key's code (default: the default key)")
    p.add_argument("--out", help="file to write (default: standard output)")
    p.set_defaults(run=export_public_key)
    return top


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return api.USAGE if exc.code not in (0, None) else api.OK
    try:
        code: int = args.run(args)
        return code
    except Usage as exc:
        sys.stderr.write(f"pfx: {exc}\n")
        return api.USAGE
    except ApiError as exc:
        if args.json:
            sys.stderr.write(
                json.dumps({"code": exc.code, "message": exc.message, "errors": exc.errors}) + "\n"
            )
        else:
            sys.stderr.write(f"pfx: {exc.code}: {exc.message}\n")
            for e in exc.errors:
                where = f"line {e.get('line')}: " if e.get("line") else ""
                sys.stderr.write(f"  {where}{e.get('filename') or ''} {e.get('code')}: {e.get('message')}\n")
        return api.TIMEOUT if exc.code == "timeout" else exc.exit_code

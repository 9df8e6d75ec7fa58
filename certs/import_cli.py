"""``python manage.py pfx import``: the bulk import pipeline from the command line.

Reads a manifest (``filename,upn,password,purpose``) and the files of a folder, creates a
batch exactly as the bulk upload page does, waits for the workers (or processes it in
this process with ``--inline``) and prints one result per row plus totals. The exit
status is 0 only when every row succeeded.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, TextIO

from certs import imports, manifest, pipeline
from certs.models import EncryptionKey, ImportBatch, ItemState
from portal.audit import Actor
from portal.models import ScopeTag

OK_STATES = {ItemState.STORED.value, ItemState.SKIPPED.value}


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, type=Path, help="CSV: filename,upn,password,purpose")
    parser.add_argument("--dir", required=True, type=Path, help="folder holding the PFX files")
    parser.add_argument("--key", help="encryption key name (default: the default key)")
    parser.add_argument("--dry-run", action="store_true", help="validate everything, store nothing")
    parser.add_argument("--update", action="store_true", help="update certificates already imported")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--inline", action="store_true", help="process here instead of in the workers")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds to wait for the workers")


def _files(folder: Path) -> dict[str, bytes]:
    paths = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix.lower() in (".pfx", ".p12")]
    if len(paths) > manifest.max_files():
        raise manifest.Rejected([manifest.ManifestError("too_many_files", "Too many files in the folder.")])
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in paths}


def _key(name: str | None) -> EncryptionKey | None:
    keys = EncryptionKey.objects.all()
    return keys.filter(key_name=name).first() if name else keys.filter(is_default=True).first()


def _refused(errors: list[manifest.ManifestError], as_json: bool, stderr: TextIO) -> int:
    if as_json:
        stderr.write(json.dumps({"errors": [e.__dict__ for e in errors]}, indent=2) + "\n")
    else:
        for e in errors:
            where = f"line {e.line}: " if e.line else ""
            stderr.write(f"{where}{e.filename + ': ' if e.filename else ''}{e.code}: {e.message}\n")
        stderr.write("Nothing was imported.\n")
    return 2


def run_import(options: dict[str, Any], stdout: TextIO, stderr: TextIO) -> int:
    key = _key(options.get("key"))
    if key is None:
        stderr.write(
            "no_key: no such encryption key; add one under Tenant administration > Encryption keys.\n"
        )
        return 2
    try:
        rows = manifest.read_manifest(Path(options["manifest"]).read_bytes())
        entries = manifest.entries(rows, _files(Path(options["dir"])))
    except manifest.Rejected as exc:
        return _refused(exc.errors, bool(options.get("json")), stderr)
    except OSError as exc:
        stderr.write(f"unreadable: {exc.strerror}: {exc.filename}\n")
        return 2
    inline = bool(options.get("inline"))
    batch = imports.batch_create(
        Actor.system("pfx import command"),
        kind=ImportBatch.Kind.COMMAND,
        key=key,
        entries=entries,
        tags=[ScopeTag.default()],
        dry_run=bool(options.get("dry_run")),
        on_duplicate=ImportBatch.OnDuplicate.UPDATE
        if options.get("update")
        else ImportBatch.OnDuplicate.SKIP,
        enqueue=not inline,
    )
    del entries
    if inline:
        ids = list(batch.items.order_by("position").values_list("pk", flat=True))
        for start in range(0, len(ids), pipeline.CHUNK_SIZE):
            pipeline.process_chunk(batch.pk, ids[start : start + pipeline.CHUNK_SIZE])
    elif not _wait(batch, int(options.get("timeout") or 3600), stderr):
        return 3
    return _report(batch, bool(options.get("json")), stdout)


def _wait(batch: ImportBatch, timeout: int, stderr: TextIO) -> bool:
    deadline = time.monotonic() + timeout
    while ImportBatch.objects.filter(pk=batch.pk, state=ImportBatch.State.RUNNING).exists():
        if time.monotonic() > deadline:
            stderr.write(f"timeout: the batch {batch.code} is still running; are the workers up?\n")
            return False
        time.sleep(1)
    return True


def _report(batch: ImportBatch, as_json: bool, stdout: TextIO) -> int:
    batch.refresh_from_db()
    rows = list(
        batch.items.order_by("position").values(
            "filename", "upn", "state", "problem_code", "problem_message", "thumbprint"
        )
    )
    ok = OK_STATES | ({ItemState.VALIDATED.value} if batch.dry_run else set())
    totals = imports.batch_counts(batch)
    if as_json:
        stdout.write(
            json.dumps(
                {"batch": str(batch.code), "dry_run": batch.dry_run, "rows": rows, "totals": totals}, indent=2
            )
            + "\n"
        )
    else:
        for r in rows:
            problem = f" {r['problem_code']}: {r['problem_message']}" if r["problem_code"] else ""
            stdout.write(f"{r['state']:<10} {r['filename']} {r['upn']} {r['thumbprint']}{problem}\n")
        stdout.write(" ".join(f"{state}={n}" for state, n in totals.items() if n) + f" total={batch.total}\n")
    return 0 if all(r["state"] in ok for r in rows) else 1

"""Unattended imports: complete sets in a drop folder are imported exactly once, the passwords file is
destroyed, results land next to the set as CSV, and failures are mailed."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail

from api import dropfolder
from api.models import DropFolder, DropSet
from api.tests.conftest import ApiClient
from certs import pipeline
from certs.models import Certificate, ImportBatch
from certs.tests.importing import add_key, directory_user, pfx_for
from conftest import _database_url
from portal.audit import Actor
from portal.models import User

BOB = "bob@contoso.example"


@pytest.fixture
def drop_root(tmp_path: Path, settings: Any) -> Path:
    settings.API_DROP_ROOT = str(tmp_path / "drop")
    return tmp_path / "drop"


def _folder(owner: User) -> DropFolder:
    return dropfolder.folder_create(
        Actor.for_user(owner),
        owner=owner,
        name="Nightly CA",
        directory="nightly",
        key=add_key(),
        on_duplicate="skip",
    )


def _write_set(root: Path, name: str, rows: list[tuple[str, str, str]], *, ready: bool = True) -> Path:
    directory = root / "nightly" / name
    directory.mkdir(parents=True)
    with (directory / "manifest.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["filename", "upn", "password", "purpose"])
        for filename, upn, password in rows:
            (directory / filename).write_bytes(pfx_for(upn, "Export-Pass-1"))
            writer.writerow([filename, upn, password, "smimeEncryption"])
    if ready:
        (directory / "READY").write_text("")
    return directory


def _process(batch: ImportBatch) -> None:
    ids = list(batch.items.order_by("position").values_list("pk", flat=True))
    pipeline.process_chunk(batch.pk, ids)


@pytest.mark.django_db
def test_a_complete_set_is_imported_once_its_passwords_destroyed_and_its_results_written_next_to_it(
    intune_admin: User, drop_root: Path
) -> None:
    folder = _folder(intune_admin)
    directory_user(BOB)
    directory = _write_set(
        drop_root, "2026-11-30", [("bob.pfx", BOB, "Export-Pass-1"), ("eve.pfx", BOB, "Wrong")]
    )
    _write_set(drop_root, "still-writing", [("x.pfx", BOB, "Export-Pass-1")], ready=False)
    assert dropfolder.scan_all() == 1
    assert dropfolder.scan_all() == 0
    assert not (directory / "manifest.csv").exists()
    found = DropSet.objects.get(folder=folder)
    assert found.batch is not None and found.batch.total == 2
    assert found.batch.created_by_name == f"{intune_admin.email} (drop folder Nightly CA)"
    assert (drop_root / "nightly" / "still-writing" / "manifest.csv").exists()
    _process(found.batch)
    dropfolder.scan_all()
    results = (drop_root / "nightly" / "2026-11-30.results.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(results)))
    assert [(r["filename"], r["state"], r["problem_code"]) for r in rows] == [
        ("bob.pfx", "stored", ""),
        ("eve.pfx", "failed", "wrong_password"),
    ]
    assert "Export-Pass" not in results and "Wrong" not in results.replace("wrong_password", "")
    assert len(mail.outbox) == 1 and "1 problem" in mail.outbox[0].subject
    dropfolder.scan_all()
    assert len(mail.outbox) == 1
    assert Certificate.objects.filter(upn=BOB).count() == 1


@pytest.mark.django_db
def test_a_refused_set_is_reported_with_its_problem_and_alerted(intune_admin: User, drop_root: Path) -> None:
    _folder(intune_admin)
    directory_user(BOB)
    directory = _write_set(drop_root, "broken", [("bob.pfx", BOB, "pw"), ("gone.pfx", BOB, "pw")])
    (directory / "gone.pfx").unlink()
    dropfolder.scan_all()
    found = DropSet.objects.get()
    assert (found.state, found.problem_code, found.batch) == ("refused", "missing_file", None)
    assert not (directory / "manifest.csv").exists()
    results = (drop_root / "nightly" / "broken.results.csv").read_text()
    assert "missing_file" in results
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_scanning_at_once_import_each_set_exactly_once(
    intune_admin: User, drop_root: Path
) -> None:
    _folder(intune_admin)
    directory_user(BOB)
    for n in range(3):
        _write_set(drop_root, f"set-{n}", [(f"bob{n}.pfx", BOB, "Export-Pass-1")])
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "API_DROP_ROOT": str(drop_root),
        "PYTHONUNBUFFERED": "1",
    }
    code = "from api import dropfolder; print(dropfolder.scan_all())"
    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=120) for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    assert sum(int(out.strip().splitlines()[-1]) for out, _ in outputs) == 3
    assert DropSet.objects.count() == 3
    assert ImportBatch.objects.count() == 3
    assert not list(drop_root.rglob("manifest.csv"))


@pytest.mark.django_db
def test_a_set_pushed_through_the_api_is_imported_once_per_name_and_never_into_a_disabled_folder(
    intune_admin: User, drop_root: Path, api_as: Callable[..., ApiClient]
) -> None:
    folder = _folder(intune_admin)
    directory_user(BOB)
    client = api_as(intune_admin, name="ca-export")

    def push() -> Any:
        body = {
            "name": "run-42",
            "manifest_file": io.BytesIO(
                b"filename,upn,password,purpose\r\nbob.pfx,bob@contoso.example,Export-Pass-1,smimeEncryption\r\n"
            ),
            "files": io.BytesIO(pfx_for(BOB, "Export-Pass-1")),
        }
        body["manifest_file"].name = "manifest.csv"  # type: ignore[attr-defined]
        body["files"].name = "bob.pfx"  # type: ignore[attr-defined]
        return client.post(f"/drop-folders/{folder.code}/sets", body)

    folder.enabled = False
    folder.save(update_fields=["enabled"])
    disabled = push()
    assert disabled.status_code == 409
    assert disabled.json()["code"] == "folder_disabled"
    assert ImportBatch.objects.count() == 0
    folder.enabled = True
    folder.save(update_fields=["enabled"])
    first = push()
    assert first.status_code == 201, first.content
    assert first.json()["state"] == "importing"
    again = push()
    assert again.status_code == 409
    assert again.json()["code"] == "already_imported"
    assert ImportBatch.objects.count() == 1
    assert b"Export-Pass" not in first.content + again.content

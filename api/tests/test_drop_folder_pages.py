"""Certificates > Drop folders: admins see their folders and what became of every set, create, edit,
disable and delete folders and scan one now; each change is audited, and no password is ever shown."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from api import dropfolder, tasks
from api.models import DropFolder, DropSet
from certs import pipeline
from certs.keys import key_add
from certs.models import EncryptionKey, ImportBatch, ItemState
from certs.tests.importing import directory_user, pfx_for, public_pem
from portal.audit import Actor
from portal.models import AuditEvent, ScopeTag, User

pytestmark = pytest.mark.django_db

BOB = "bob@contoso.example"
PASSWORD = "Export-Pass-1"


@pytest.fixture(autouse=True)
def drop_root(tmp_path: Path, settings: Any) -> Path:
    settings.API_DROP_ROOT = str(tmp_path / "drop")
    settings.PORTAL_ENFORCE_MFA = False
    return tmp_path / "drop"


@pytest.fixture
def key(make_tag: Callable[[str], ScopeTag]) -> EncryptionKey:
    """One connector key every admin of these tests may use."""
    return key_add(
        Actor.system(),
        data=public_pem(),
        provider_name="Microsoft Software Key Storage Provider",
        key_name="PFXEncryptionKey",
        default_padding="oaepSha512",
        make_default=True,
        tags=[ScopeTag.default(), make_tag("Paris"), make_tag("London")],
    )


def _folder(
    owner: User, key: EncryptionKey, name: str = "Nightly CA", directory: str = "nightly"
) -> DropFolder:
    return dropfolder.folder_create(
        Actor.for_user(owner), owner=owner, name=name, directory=directory, key=key, on_duplicate="skip"
    )


def _signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _write_set(folder: DropFolder, name: str, rows: list[tuple[str, str]]) -> Path:
    """A complete set as a CA's export job writes it: PFX files, the manifest, then READY."""
    directory = dropfolder.folder_path(folder) / name
    directory.mkdir(parents=True)
    with (directory / "manifest.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["filename", "upn", "password", "purpose"])
        for filename, password in rows:
            (directory / filename).write_bytes(pfx_for(BOB, PASSWORD))
            writer.writerow([filename, BOB, password, "smimeEncryption"])
    (directory / "READY").write_text("")
    return directory


def _push(folder: DropFolder, name: str, files: int = 2) -> DropSet:
    """A set pushed to the folder (its files are read by the workers, which these sets never reach)."""
    manifest = "filename,upn,password,purpose\r\n" + "".join(
        f"f{n}.pfx,{BOB},{PASSWORD},smimeEncryption\r\n" for n in range(files)
    )
    uploads = [(f"f{n}.pfx", b"not read here") for n in range(files)]
    return dropfolder.import_set(folder, dropfolder.Pushed(name, manifest.encode(), uploads))


def _finish(found: DropSet, states: list[str]) -> None:
    """End the set's import with these row states, as the workers would."""
    assert found.batch is not None
    for item, state in zip(found.batch.items.order_by("position"), states, strict=True):
        item.state, item.done = state, True
        item.problem_code = "wrong_password" if state == ItemState.FAILED else ""
        item.save()
    found.batch.state = ImportBatch.State.DONE
    found.batch.save()


@pytest.fixture
def sets(intune_admin: User, key: EncryptionKey) -> Iterator[DropFolder]:
    """A folder with one set of each outcome: imported, imported with a failed file, refused, running."""
    directory_user(BOB)
    folder = _folder(intune_admin, key)
    _finish(_push(folder, "2026-11-27"), [ItemState.STORED, ItemState.SKIPPED])
    _finish(_push(folder, "2026-11-28"), [ItemState.STORED, ItemState.FAILED])
    bad = "filename,upn,password,purpose\r\ngone.pfx,bob@contoso.example,x,smimeEncryption\r\n"
    dropfolder.import_set(folder, dropfolder.Pushed("2026-11-29", bad.encode(), [("other.pfx", b"x")]))
    _push(folder, "2026-11-30")
    yield folder


def test_the_list_shows_each_folder_with_its_settings_and_how_many_sets_were_imported_failed_or_refused(
    intune_admin: User, sets: DropFolder
) -> None:
    response = _signed_in(intune_admin).get(reverse("drop_folders:list"))
    assert response.status_code == 200
    row = response.content.decode().split('data-testid="drop-folder"')[1].split("</tr>")[0]
    assert "Nightly CA" in row and ">nightly<" in row
    assert "PFXEncryptionKey" in row and "Skip" in row and intune_admin.email in row
    assert "Enabled" in row and "Never" in row
    counts = row.split('data-testid="set-counts">')[1].split("</td>")[0]
    assert re.findall(r">([^<>]+)</div>", counts) == [
        "1 imported",
        "1 with failed files",
        "1 refused",
        "1 running",
    ]


def test_the_folder_page_shows_its_sets_newest_first_with_their_state_import_and_file_counts(
    intune_admin: User, sets: DropFolder, drop_root: Path
) -> None:
    page = _signed_in(intune_admin).get(reverse("drop_folders:detail", args=[sets.code])).content.decode()
    rows = page.split('data-testid="set"')[1:]
    assert [r.split('class="mono filename">')[1].split("<")[0] for r in rows] == [
        "2026-11-30",
        "2026-11-29",
        "2026-11-28",
        "2026-11-27",
    ]
    running, refused, failed, imported = rows
    assert "Running" in running
    assert "Refused" in refused and "missing_file" in refused and "No uploaded file has this name" in refused
    assert "Imported, 1 failed" in failed
    batch = DropSet.objects.get(name="2026-11-27").batch
    assert batch is not None
    assert "badge-ok" in imported and reverse("certs:batch", args=[batch.code]) in imported
    assert [c.split("<")[0] for c in imported.split('class="num">')[1:5]] == ["2", "1", "1", "0"]
    assert str(drop_root.absolute() / "nightly") in page and "READY" in page and "manifest.csv" in page
    assert PASSWORD not in page


def test_the_folder_page_sends_only_its_sets_to_htmx_and_keeps_polling_while_a_set_is_running(
    intune_admin: User, sets: DropFolder
) -> None:
    url = reverse("drop_folders:detail", args=[sets.code])
    part = _signed_in(intune_admin).get(url, headers={"HX-Request": "true"}).content.decode()
    assert part.lstrip().startswith('<section class="card" id="sets"') and "<html" not in part
    assert f'hx-get="{url}"' in part and f'href="{url}"' in part
    assert part.count('data-testid="set"') == 4


def test_a_bad_directory_is_refused_next_to_its_field_and_nothing_is_created(
    intune_admin: User, key: EncryptionKey
) -> None:
    response = _signed_in(intune_admin).post(
        reverse("drop_folders:new"),
        {"name": "Nightly", "directory": "../etc", "encryption_key": str(key.code), "on_duplicate": "skip"},
    )
    assert response.status_code == 400
    field = response.content.decode().split('for="id_directory"')[1].split('<div class="field">')[0]
    assert "letters, digits, hyphens and underscores only" in field and "(code bad_directory)" in field
    assert not DropFolder.objects.exists()
    assert not AuditEvent.objects.filter(activity="Create import drop folder").exists()


def test_a_key_the_admin_may_not_use_is_refused_next_to_its_field(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], key: EncryptionKey
) -> None:
    tokyo = make_admin("intune_administrator", tags=[make_tag("Tokyo")])
    response = _signed_in(tokyo).post(
        reverse("drop_folders:new"),
        {"name": "Nightly", "directory": "nightly", "encryption_key": str(key.code), "on_duplicate": "skip"},
    )
    assert response.status_code == 400
    assert "not one you may use (code no_key)" in response.content.decode()
    assert not DropFolder.objects.exists()


def test_a_folder_is_created_with_the_admins_tags_and_its_directory_and_the_change_is_audited(
    intune_admin: User, key: EncryptionKey, drop_root: Path, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = _signed_in(intune_admin).post(
            reverse("drop_folders:new"),
            {
                "name": " Nightly  CA ",
                "directory": "nightly-ca",
                "encryption_key": str(key.code),
                "on_duplicate": "update",
            },
        )
    folder = DropFolder.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "drop_folders:detail", args=[folder.code]
    )
    assert (folder.name, folder.owner, folder.on_duplicate) == ("Nightly CA", intune_admin, "update")
    assert [t.name for t in folder.scope_tags.all()] == ["Default"]
    assert (drop_root / "nightly-ca").is_dir()
    assert AuditEvent.objects.filter(activity="Create import drop folder", actor=intune_admin).count() == 1


def test_scan_now_imports_a_ready_set_once_even_when_pressed_twice(
    intune_admin: User, key: EncryptionKey, django_capture_on_commit_callbacks: Any
) -> None:
    directory_user(BOB)
    folder = _folder(intune_admin, key)
    directory = _write_set(folder, "2026-11-30", [("bob.pfx", PASSWORD)])
    client = _signed_in(intune_admin)
    with django_capture_on_commit_callbacks() as queued:
        first = client.post(reverse("drop_folders:scan", args=[folder.code]))
        second = client.post(reverse("drop_folders:scan", args=[folder.code]))
    assert first.status_code == second.status_code == 302
    # Each press queues the folder's scan once its transaction commits; a worker runs both.
    assert [(q.func, q.args) for q in queued] == [(tasks.scan_drop_folder.delay, (folder.pk,))] * 2
    assert [tasks.scan_drop_folder(*q.args) for q in queued] == [1, 0]
    found = DropSet.objects.get(folder=folder)
    assert found.batch is not None and found.batch.total == 1
    assert ImportBatch.objects.count() == 1
    assert not (directory / "manifest.csv").exists()
    assert AuditEvent.objects.filter(activity="Scan import drop folder").count() == 2
    page = client.get(reverse("drop_folders:detail", args=[folder.code])).content.decode()
    assert "2026-11-30" in page and "Scan queued" in page and "Never" not in page.split("last-scan")[1][:40]


def test_a_disabled_folder_is_neither_scanned_by_beat_nor_by_scan_now(
    intune_admin: User, key: EncryptionKey, django_capture_on_commit_callbacks: Any
) -> None:
    folder = _folder(intune_admin, key)
    _write_set(folder, "2026-11-30", [("bob.pfx", PASSWORD)])
    client = _signed_in(intune_admin)
    client.post(reverse("drop_folders:disable", args=[folder.code]))
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(reverse("drop_folders:scan", args=[folder.code]), follow=True)
    assert not queued
    assert (
        "The drop folder is disabled: enable it to scan it. (code folder_disabled)"
        in response.content.decode()
    )
    assert dropfolder.scan_all() == 0
    assert not DropSet.objects.exists()
    client.post(reverse("drop_folders:enable", args=[folder.code]))
    assert dropfolder.scan_all() == 1
    activities = list(AuditEvent.objects.filter(category="Automation").values_list("activity", flat=True))
    assert "Disable import drop folder" in activities and "Enable import drop folder" in activities
    assert "Scan import drop folder" not in activities


def test_editing_a_folder_changes_its_name_and_rule_and_is_audited_with_the_old_values(
    intune_admin: User, key: EncryptionKey
) -> None:
    folder = _folder(intune_admin, key)
    client = _signed_in(intune_admin)
    assert (
        'value="Nightly CA"' in client.get(reverse("drop_folders:edit", args=[folder.code])).content.decode()
    )
    response = client.post(
        reverse("drop_folders:edit", args=[folder.code]),
        {"name": "Weekly CA", "encryption_key": str(key.code), "on_duplicate": "update"},
    )
    assert response.status_code == 302
    folder.refresh_from_db()
    assert (folder.name, folder.directory, folder.on_duplicate) == ("Weekly CA", "nightly", "update")
    event = AuditEvent.objects.get(activity="Update import drop folder")
    assert {c["field"]: (c["old"], c["new"]) for c in event.resources[0]["changes"]} == {
        "name": ("Nightly CA", "Weekly CA"),
        "on_duplicate": ("skip", "update"),
    }


def test_deleting_a_folder_asks_first_then_forgets_it_and_its_sets_but_keeps_its_imports(
    intune_admin: User, sets: DropFolder
) -> None:
    client = _signed_in(intune_admin)
    confirm = client.get(reverse("drop_folders:delete", args=[sets.code]))
    assert confirm.status_code == 200 and "Delete Nightly CA?" in confirm.content.decode()
    assert DropFolder.objects.exists()
    response = client.post(reverse("drop_folders:delete", args=[sets.code]))
    assert response.status_code == 302
    assert not DropFolder.objects.exists() and not DropSet.objects.exists()
    assert ImportBatch.objects.count() == 3
    assert AuditEvent.objects.filter(activity="Delete import drop folder").count() == 1


@pytest.mark.parametrize("role", ["read_only_operator", "help_desk_operator"])
def test_a_reader_sees_the_folders_but_every_change_is_refused(
    role: str, make_admin: Callable[..., User], sets: DropFolder, key: EncryptionKey
) -> None:
    client = _signed_in(make_admin(role))
    assert "Nightly CA" in client.get(reverse("drop_folders:list")).content.decode()
    page = client.get(reverse("drop_folders:detail", args=[sets.code])).content.decode()
    assert "2026-11-30" in page
    assert "Scan now" not in page and "Edit</a>" not in page and "Disable</button>" not in page
    code = [sets.code]
    refused = [
        client.post(reverse("drop_folders:scan", args=code)),
        client.post(reverse("drop_folders:disable", args=code)),
        client.post(reverse("drop_folders:delete", args=code)),
        client.post(reverse("drop_folders:edit", args=code), {"name": "X", "encryption_key": str(key.code)}),
        client.post(
            reverse("drop_folders:new"),
            {"name": "Mine", "directory": "mine", "encryption_key": str(key.code), "on_duplicate": "skip"},
        ),
    ]
    assert [r.status_code for r in refused] == [403] * 5
    sets.refresh_from_db()
    assert (sets.name, sets.enabled, DropFolder.objects.count()) == ("Nightly CA", True, 1)
    assert (
        not AuditEvent.objects.filter(activity__contains="drop folder")
        .exclude(activity__startswith="Create")
        .exists()
    )


def test_scope_tags_hide_the_folders_of_other_tags(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], key: EncryptionKey
) -> None:
    paris = make_admin("intune_administrator", tags=[make_tag("Paris")])
    london = make_admin("intune_administrator", tags=[make_tag("London")])
    _folder(paris, key, "Paris CA", "paris")
    theirs = _folder(london, key, "London CA", "london")
    found = _push(theirs, "2026-11-30")
    client = _signed_in(paris)
    listed = client.get(reverse("drop_folders:list")).content.decode()
    assert "Paris CA" in listed and "London CA" not in listed
    assert client.get(reverse("drop_folders:detail", args=[theirs.code])).status_code == 404
    assert client.get(reverse("drop_folders:results", args=[theirs.code, found.pk])).status_code == 404
    assert client.post(reverse("drop_folders:scan", args=[theirs.code])).status_code == 404
    assert client.post(reverse("drop_folders:delete", args=[theirs.code])).status_code == 404
    assert DropFolder.objects.count() == 2


def test_the_results_csv_download_is_the_file_written_next_to_the_set(
    intune_admin: User, key: EncryptionKey, drop_root: Path
) -> None:
    directory_user(BOB)
    folder = _folder(intune_admin, key)
    _write_set(folder, "2026-11-30", [("bob.pfx", PASSWORD), ("eve.pfx", "Wrong-Pass-2")])
    dropfolder.scan_all()
    found = DropSet.objects.get()
    assert found.batch is not None
    pipeline.process_chunk(found.batch.pk, list(found.batch.items.values_list("pk", flat=True)))
    dropfolder.scan_all()  # writes the results next to the set
    response = _signed_in(intune_admin).get(reverse("drop_folders:results", args=[folder.code, found.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="2026-11-30.results.csv"' in response["Content-Disposition"]
    written = (drop_root / "nightly" / "2026-11-30.results.csv").read_bytes()
    assert response.content == written == dropfolder.results_csv(found)
    assert b"wrong_password" in response.content
    assert PASSWORD.encode() not in response.content and b"Wrong-Pass-2" not in response.content


def _queries(client: Client, folder: DropFolder) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("drop_folders:detail", args=[folder.code]))
    assert response.status_code == 200
    return len(captured)


def test_the_folder_page_runs_as_many_queries_for_many_sets_as_for_one(
    intune_admin: User, key: EncryptionKey
) -> None:
    directory_user(BOB)
    folder = _folder(intune_admin, key)
    client = _signed_in(intune_admin)
    _finish(_push(folder, "set-00"), [ItemState.STORED, ItemState.FAILED])
    _queries(client, folder)  # per-process caches out of the count
    one = _queries(client, folder)
    for n in range(1, 12):
        _finish(_push(folder, f"set-{n:02d}"), [ItemState.STORED, ItemState.SKIPPED])
    _push(folder, "set-12")
    many = _queries(client, folder)
    assert many == one
    assert (
        client.get(reverse("drop_folders:detail", args=[folder.code]))
        .content.decode()
        .count('data-testid="set"')
        == 13
    )

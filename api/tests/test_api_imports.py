"""Imports through the API: start one from a manifest and a ZIP, read each row's result, retry a failed
row with a new password, cancel, import a dry run for real; and no password anywhere after."""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from api.tests.conftest import ApiClient
from certs import pipeline
from certs.models import Certificate, ImportBatch, ImportItem
from certs.tests.importing import add_key, directory_user, pfx_for
from portal.models import AuditEvent, User

pytestmark = pytest.mark.django_db

BOB = "bob@contoso.example"
CAROL = "carol@contoso.example"


def _named(data: bytes, name: str) -> io.BytesIO:
    buffer = io.BytesIO(data)
    buffer.name = name
    return buffer


def _start(client: ApiClient, manifest: str, files: dict[str, bytes], **options: str) -> Any:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        for name, data in files.items():
            out.writestr(name, data)
    body = {
        "manifest_file": _named(manifest.encode(), "manifest.csv"),
        "files": _named(archive.getvalue(), "files.zip"),
        **options,
    }
    return client.post("/imports", body)


def _process(code: str) -> None:
    batch = ImportBatch.objects.get(code=code)
    ids = list(batch.items.filter(done=False).order_by("position").values_list("pk", flat=True))
    pipeline.process_chunk(batch.pk, ids)


@pytest.fixture
def client(intune_admin: User, api_as: Callable[..., ApiClient]) -> ApiClient:
    add_key()
    directory_user(BOB)
    directory_user(CAROL)
    return api_as(intune_admin, name="ca-job")


def test_an_import_shows_each_rows_result_and_a_failed_row_is_retried_with_a_new_password(
    client: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    manifest = (
        "filename,upn,password,purpose\r\n"
        "bob.pfx,bob@contoso.example,Bob-Secret-1,smimeEncryption\r\n"
        "carol.pfx,carol@contoso.example,Typo-Secret-2,smimeEncryption\r\n"
    )
    files = {"bob.pfx": pfx_for(BOB, "Bob-Secret-1"), "carol.pfx": pfx_for(CAROL, "Carol-Secret-3")}
    started = _start(client, manifest, files)
    assert started.status_code == 201, started.content
    code = started.json()["code"]
    _process(code)

    status = client.get(f"/imports/{code}").json()
    assert status["state"] == "done"
    rows = {r["filename"]: r for r in status["rows"]}
    assert rows["bob.pfx"]["state"] == "stored" and rows["bob.pfx"]["certificate"]
    assert (rows["carol.pfx"]["state"], rows["carol.pfx"]["problem_code"]) == ("failed", "wrong_password")
    assert rows["carol.pfx"]["retryable"] is True
    assert client.get(f"/imports/{code}", state="failed").json()["rows"][0]["filename"] == "carol.pfx"

    retried = client.post(
        f"/imports/{code}/retry", json={"passwords": {str(rows["carol.pfx"]["position"]): "Carol-Secret-3"}}
    )
    assert retried.json() == {"count": 1}
    _process(code)
    assert {r["state"] for r in client.get(f"/imports/{code}").json()["rows"]} == {"stored"}
    assert Certificate.objects.filter(upn=CAROL).exists()

    trail = " ".join(str(e.resources) + e.actor_name for e in AuditEvent.objects.all())
    assert "ca-job" in trail
    stored = str(list(ImportItem.objects.values("problem_message", "warnings")))
    for secret in ("Bob-Secret-1", "Typo-Secret-2", "Carol-Secret-3"):
        assert secret not in caplog.text and secret not in trail and secret not in stored
        assert secret not in started.content.decode() + retried.content.decode()


def test_a_refused_upload_lists_every_problem_as_problem_details(client: ApiClient) -> None:
    manifest = (
        "filename,upn,password,purpose\r\n"
        "carol.pfx,carol@contoso.example,Hidden-1,wifi\r\n"
        "bob.pfx,bob@contoso.example,Hidden-2,nonsense\r\n"
    )
    answer = _start(client, manifest, {"bob.pfx": pfx_for(BOB, "Hidden-2")})
    assert answer.status_code == 400
    assert answer["Content-Type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"].startswith("urn:pfx-portal:problem:")
    assert {e["line"] for e in problem["errors"]} == {2, 3}
    assert "Hidden" not in answer.content.decode()
    assert not ImportBatch.objects.exists()


def test_a_dry_run_stores_nothing_and_can_then_be_imported_for_real(client: ApiClient) -> None:
    manifest = "filename,upn,password,purpose\r\nbob.pfx,bob@contoso.example,Bob-Secret-1,smimeSigning\r\n"
    dry = _start(client, manifest, {"bob.pfx": pfx_for(BOB, "Bob-Secret-1")}, dry_run="true").json()
    assert dry["dry_run"] is True
    _process(dry["code"])
    assert client.get(f"/imports/{dry['code']}").json()["rows"][0]["state"] == "validated"
    assert not Certificate.objects.exists()
    real = client.post(f"/imports/{dry['code']}/promote")
    assert real.status_code == 201
    _process(real.json()["code"])
    assert Certificate.objects.filter(upn=BOB, purpose="smimeSigning").exists()
    again = client.post(f"/imports/{dry['code']}/promote")
    assert (again.status_code, again.json()["code"]) == (400, "already_promoted")


def test_a_running_import_is_cancelled_and_a_finished_one_cannot_be(client: ApiClient) -> None:
    manifest = "filename,upn,password,purpose\r\nbob.pfx,bob@contoso.example,Bob-Secret-1,smimeEncryption\r\n"
    code = _start(client, manifest, {"bob.pfx": pfx_for(BOB, "Bob-Secret-1")}).json()["code"]
    assert client.post(f"/imports/{code}/cancel").json() == {"count": 1}
    assert client.get(f"/imports/{code}").json()["state"] == "cancelled"
    again = client.post(f"/imports/{code}/cancel")
    assert (again.status_code, again.json()["code"]) == (400, "not_running")

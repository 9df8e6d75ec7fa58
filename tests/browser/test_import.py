"""Certificate import in a real browser, with a real Celery worker doing the bulk work."""

from __future__ import annotations

import re
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from playwright.sync_api import Page, expect

from certs import imports
from certs.models import EncryptionKey, ImportBatch
from certs.tests.importing import add_key, directory_user, pfx_for
from portal.audit import Actor
from portal.models import ScopeTag, User

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"
CAROL = "carol@contoso.example"


@pytest.fixture
def importer(make_admin: Callable[..., User], sign_in_as: Callable[[User], None]) -> User:
    admin = make_admin("intune_administrator", email="importer@contoso.example")
    TOTP.activate(admin, generate_totp_secret())
    sign_in_as(admin)
    add_key()
    return admin


def test_a_single_import_shows_up_on_the_users_page(page: Page, importer: User, tmp_path: Path) -> None:
    user = directory_user(ALICE, "Alice Example")
    pfx = tmp_path / "alice.pfx"
    pfx.write_bytes(pfx_for(ALICE, "Alice-Export-1"))

    page.goto("/certificates/import/")
    page.get_by_label("PFX file").set_input_files(str(pfx))
    page.get_by_label("Password").fill("Alice-Export-1")
    page.get_by_label("User").fill(ALICE)
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_test_id("check")).to_contain_text("Ready to import")
    page.get_by_label("PFX file").set_input_files(str(pfx))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_test_id("progress")).to_have_attribute("data-state", "done")

    page.goto(f"/users/{user.object_id}/")
    panel = page.get_by_test_id("user-certificates")
    expect(panel.get_by_test_id("certificate")).to_have_count(1)
    expect(panel).to_contain_text("S/MIME encryption")
    expect(panel).to_contain_text("Stored, not uploaded")


def _bulk_files(tmp_path: Path) -> tuple[Path, Path]:
    archive = tmp_path / "certificates.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("alice.pfx", pfx_for(ALICE, "pw-alice"))
        z.writestr("bob.pfx", pfx_for(BOB, "pw-bob"))
        z.writestr("carol.pfx", pfx_for(CAROL, "pw-carol"))
        z.writestr("broken.pfx", b"this is not a certificate")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "filename,upn,password,purpose\n"
        f"alice.pfx,{ALICE},pw-alice,smimeEncryption\n"
        f"bob.pfx,,pw-bob,smimeEncryption\n"
        f"carol.pfx,{CAROL},not-carols-password,smimeEncryption\n"
        f"broken.pfx,{ALICE},x,\n"
    )
    return archive, manifest


def _start_bulk(page: Page, tmp_path: Path) -> None:
    for upn in (ALICE, BOB, CAROL):
        directory_user(upn)
    archive, manifest = _bulk_files(tmp_path)
    page.goto("/certificates/import/bulk/")
    page.get_by_label("PFX files or one ZIP").set_input_files(str(archive))
    page.get_by_label("Manifest (CSV)").set_input_files(str(manifest))
    page.get_by_role("button", name="Start import").click()
    expect(page.get_by_test_id("progress")).to_have_attribute("data-percent", "100", timeout=60_000)


@pytest.mark.worker
def test_a_bulk_zip_with_good_and_bad_files_reaches_100_percent_with_codes_on_the_bad_rows(
    page: Page, importer: User, celery_worker: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    _start_bulk(page, tmp_path)
    expect(page.get_by_test_id("count-stored")).to_contain_text("2")
    expect(page.get_by_test_id("count-failed")).to_contain_text("2")
    rows = page.get_by_test_id("row")
    expect(rows.filter(has_text="carol.pfx")).to_have_attribute("data-code", "wrong_password")
    expect(rows.filter(has_text="broken.pfx")).to_have_attribute("data-code", "not_pkcs12")
    expect(rows.filter(has_text="bob.pfx")).to_contain_text(BOB)


@pytest.mark.worker
def test_retrying_a_failed_row_with_the_right_password_succeeds(
    page: Page, importer: User, celery_worker: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    _start_bulk(page, tmp_path)
    page.get_by_label("Password for carol.pfx").fill("pw-carol")
    page.get_by_role("button", name="Retry failed rows").click()
    carol = page.get_by_test_id("row").filter(has_text="carol.pfx")
    expect(carol).to_have_attribute("data-state", "stored", timeout=60_000)
    expect(page.get_by_test_id("count-stored")).to_contain_text("3")


def test_the_rows_of_a_large_batch_page_through_in_place(page: Page, importer: User) -> None:
    directory_user(ALICE)
    entries = [imports.Entry(f"file-{i:02d}.pfx", b"x", "pw", ALICE) for i in range(60)]
    batch = imports.batch_create(
        Actor.system(),
        kind=ImportBatch.Kind.BULK,
        key=EncryptionKey.objects.get(),
        entries=entries,
        tags=[ScopeTag.default()],
        enqueue=False,
    )
    page.goto(f"/certificates/imports/{batch.code}/")
    page.get_by_role("link", name="Next").click()
    expect(page.locator("nav.pagination")).to_have_text(re.compile(r"Page 2 of 2"))
    expect(page.get_by_test_id("row").first).to_have_attribute("data-file", "file-50.pfx")
    # The page's own progress and rows are replaced, not nested inside the page links.
    expect(page.locator("#live")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"page=2"))

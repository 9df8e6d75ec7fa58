"""The import pages through the test client: single import and its live check, bulk upload, batches."""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from certs import imports, lifecycle, pipeline
from certs.models import Certificate, EncryptionKey, GraphState, ImportBatch, ImportItem
from certs.tests.importing import ALICE, add_key, directory_user, pfx_for, stored_certificate, upload
from portal.audit import Actor
from portal.models import ScopeTag

BOB = "bob@contoso.example"


@pytest.fixture(autouse=True)
def no_mfa_step(settings: Any) -> None:
    settings.PORTAL_ENFORCE_MFA = False


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_the_live_check_shows_the_thumbprint_before_anything_is_stored(admin_client: Client) -> None:
    directory_user(ALICE)
    add_key()
    response = admin_client.post(
        reverse("certs:import_check"),
        {
            "file": upload("a.pfx", pfx_for(ALICE, "pw")),
            "password": "pw",
            "upn": ALICE,
            "purpose": "smimeEncryption",
            "on_duplicate": "skip",
            "key": EncryptionKey.objects.get().pk,
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "Ready to import" in response.content.decode()
    assert not Certificate.objects.exists()


def test_a_single_import_stores_the_certificate_and_shows_the_batch(admin_client: Client) -> None:
    directory_user(ALICE)
    key = add_key()
    response = admin_client.post(
        reverse("certs:import"),
        {
            "file": upload("a.pfx", pfx_for(ALICE, "pw")),
            "password": "pw",
            "upn": ALICE,
            "purpose": "smimeEncryption",
            "on_duplicate": "skip",
            "key": key.pk,
            "action": "import",
        },
    )
    assert response.status_code == 302
    assert Certificate.objects.filter(upn=ALICE).exists()
    page = admin_client.get(response["Location"])
    assert 'data-state="stored"' in page.content.decode()


def test_an_unknown_user_is_refused_on_the_single_import(admin_client: Client) -> None:
    key = add_key()
    response = admin_client.post(
        reverse("certs:import"),
        {
            "file": upload("a.pfx", pfx_for(ALICE, "pw")),
            "password": "pw",
            "upn": "ghost@contoso.example",
            "purpose": "unassigned",
            "on_duplicate": "skip",
            "key": key.pk,
            "action": "import",
        },
    )
    assert response.status_code == 400
    assert "unknown_upn" in response.content.decode()


def _bulk_post(client: Client, files: list[tuple[str, bytes]], manifest: str, **extra: Any) -> Any:
    key = EncryptionKey.objects.first() or add_key()
    data = {
        "pfx_files": [upload(n, d) for n, d in files],
        "manifest": upload("manifest.csv", manifest.encode()),
        "on_duplicate": "skip",
        "key": key.pk,
        **extra,
    }
    return client.post(reverse("certs:bulk_import"), data)


def test_a_bulk_zip_creates_a_batch_with_one_row_per_file(admin_client: Client) -> None:
    directory_user(ALICE)
    archive = _zip({"a.pfx": pfx_for(ALICE, "pw"), "b.pfx": b"junk"})
    manifest = f"filename,upn,password,purpose\na.pfx,{ALICE},pw,smimeEncryption\nb.pfx,{ALICE},pw,\n"
    response = _bulk_post(admin_client, [("certs.zip", archive)], manifest)
    assert response.status_code == 302
    batch = ImportBatch.objects.get()
    assert batch.total == 2 and batch.items.count() == 2


def test_the_batch_page_shows_rows_a_worker_has_taken_as_in_progress(admin_client: Client) -> None:
    directory_user(ALICE)
    entries = [imports.Entry(f"{i}.pfx", b"x", "pw", ALICE) for i in range(5)]
    batch = imports.batch_create(
        Actor.system(),
        kind=ImportBatch.Kind.BULK,
        key=add_key(),
        entries=entries,
        tags=[ScopeTag.default()],
        enqueue=False,
    )
    taken = list(batch.items.order_by("position").values_list("pk", flat=True)[:2])
    ImportItem.objects.filter(pk__in=taken).update(claim=uuid.uuid4(), claimed_at=timezone.now())
    page = admin_client.get(reverse("certs:batch", args=[batch.code])).content.decode()
    assert re.search(r'data-testid="count-queued"><div class="figure">3<', page)
    assert re.search(r'data-testid="count-in-progress"[^>]*><div class="figure">2<', page)


def test_the_batch_page_says_where_its_certificates_stand_in_intune(admin_client: Client) -> None:
    certificate = stored_certificate()
    batch = certificate.batch
    assert batch is not None
    page = admin_client.get(reverse("certs:batch", args=[batch.code])).content.decode()
    assert re.search(r'data-testid="intune-not_uploaded"><div class="figure">1<', page)
    assert "No tenant is connected" in page and reverse("graph:connection") in page
    assert 'data-testid="intune-state">Stored, not uploaded<' in page
    Certificate.objects.filter(pk=certificate.pk).update(graph_state=GraphState.PENDING)
    live = admin_client.get(reverse("certs:batch", args=[batch.code]), headers={"HX-Request": "true"})
    # Still polled while uploads are pending, though the import itself is done.
    assert 'hx-trigger="every 2s"' in live.content.decode()


@pytest.mark.parametrize(
    ("files", "manifest", "code"),
    [
        ({"../evil.pfx": b"x"}, "filename,password\nevil.pfx,p\n", "unsafe_path"),
        ({"/abs.pfx": b"x"}, "filename,password\nabs.pfx,p\n", "unsafe_path"),
        ({"inner.zip": b"PK\x03\x04"}, "filename,password\ninner.zip,p\n", "nested_archive"),
        ({"sneaky.pfx": b"PK\x03\x04rest"}, "filename,password\nsneaky.pfx,p\n", "nested_archive"),
        ({"a.pfx": b"x"}, "filename,password\na.pfx,p\nmissing.pfx,p\n", "missing_file"),
        ({"a.pfx": b"x", "b.pfx": b"y"}, "filename,password\na.pfx,p\n", "file_without_row"),
        ({"a.pfx": b"x"}, "filename,upn,password\na.pfx,ghost@contoso.example,p\n", "unknown_upn"),
        ({"a.pfx": b"x"}, "name,password\na.pfx,p\n", "csv_header"),
        ({"a.pfx": b"x"}, "filename,password,purpose\na.pfx,p,vpnish\n", "csv_bad_purpose"),
        ({"a.pfx": b"x"}, "filename,password\na.pfx,p,extra\n", "csv_columns"),
    ],
)
def test_a_bad_bulk_upload_is_refused_whole_with_a_stable_code(
    admin_client: Client, files: dict[str, bytes], manifest: str, code: str
) -> None:
    response = _bulk_post(admin_client, [("certs.zip", _zip(files))], manifest)
    assert response.status_code == 400
    assert code in response.content.decode()
    assert not ImportBatch.objects.exists() and not ImportItem.objects.exists()


def test_csv_errors_carry_their_line_number(admin_client: Client) -> None:
    response = _bulk_post(admin_client, [("a.pfx", b"x")], "filename,password,purpose\na.pfx,p,\n,p,\n")
    assert response.status_code == 400
    assert '<td class="num">3</td>' in response.content.decode()


def test_duplicate_names_in_a_zip_are_refused(admin_client: Client) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.pfx", b"x")
        archive.writestr("A.PFX", b"y")
    response = _bulk_post(admin_client, [("c.zip", buffer.getvalue())], "filename,password\na.pfx,p\n")
    assert response.status_code == 400 and "duplicate_name" in response.content.decode()


def test_a_zip_expanding_beyond_the_limit_is_refused(admin_client: Client, settings: Any) -> None:
    settings.CERTS_MAX_UNCOMPRESSED_BYTES = 1000
    archive = _zip({"a.pfx": b"\0" * 5000})
    response = _bulk_post(admin_client, [("c.zip", archive)], "filename,password\na.pfx,p\n")
    assert response.status_code == 400 and "zip_too_large" in response.content.decode()


def test_a_request_over_the_size_cap_gets_413(admin_client: Client, settings: Any) -> None:
    settings.CERTS_MAX_UPLOAD_BYTES = 2000
    response = _bulk_post(admin_client, [("a.pfx", b"x" * 5000)], "filename,password\na.pfx,p\n")
    assert response.status_code == 413 and "request_too_large" in response.content.decode()


def test_more_loose_files_than_a_request_may_carry_get_a_clear_refusal(
    admin_client: Client, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    files = [(f"u{i}.pfx", b"x") for i in range(4)]
    response = _bulk_post(admin_client, files, "filename,password\n")
    body = response.content.decode()
    assert response.status_code == 400 and "too_many_files" in body and "ZIP" in body
    assert not ImportBatch.objects.exists()


def test_the_manifest_template_downloads(admin_client: Client) -> None:
    response = admin_client.get(reverse("certs:manifest_template"))
    assert response.status_code == 200
    assert response.content.decode().startswith("filename,upn,password,purpose")


def _single(client: Client, action: str, **fields: Any) -> Any:
    key = EncryptionKey.objects.first() or add_key()
    data = {
        "upn": ALICE,
        "purpose": "smimeEncryption",
        "on_duplicate": "skip",
        "key": key.pk,
        "action": action,
    }
    return client.post(reverse("certs:import"), {**data, **fields})


def test_the_single_import_never_sends_the_password_back_and_imports_without_retyping_it(
    admin_client: Client,
) -> None:
    from certs.tests.test_import_secrets import encodings

    directory_user(ALICE)
    secret = f"Single-{uuid.uuid4().hex[:12]}"
    checked = _single(
        admin_client, "check", file=upload("alice.pfx", pfx_for(ALICE, secret)), password=secret
    )
    body = checked.content
    assert checked.status_code == 200 and b"Ready to import" in body
    assert not any(form in body for form in encodings(secret))
    assert "no-store" in checked["Cache-Control"]
    token = re.search(r'name="held" value="([^"]+)"', body.decode())
    assert token is not None and "alice.pfx" in body.decode()

    # Import with neither the file nor the password sent again: both were held on the server.
    imported = _single(admin_client, "import", held=token.group(1))
    assert imported.status_code == 302
    certificate = Certificate.objects.get(upn=ALICE)
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from certs.tests.importing import connector_private_key

    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA512()), algorithm=hashes.SHA512(), label=None)
    assert connector_private_key().decrypt(bytes(certificate.encrypted_password), oaep) == secret.encode()
    # Used once: the held file and password are gone.
    assert _single(admin_client, "import", held=token.group(1)).status_code == 400


def test_a_refused_single_import_keeps_the_file_and_password_on_the_server_not_in_the_page(
    admin_client: Client,
) -> None:
    from certs.tests.test_import_secrets import encodings

    directory_user(ALICE)
    secret = f"Refused-{uuid.uuid4().hex[:12]}"
    refused = _single(
        admin_client,
        "import",
        file=upload("a.pfx", pfx_for(ALICE, secret)),
        password=secret,
        upn="ghost@x.example",
    )
    assert refused.status_code == 400 and "unknown_upn" in refused.content.decode()
    assert not any(form in refused.content for form in encodings(secret))
    password_box = re.search(r'<input[^>]*type="password"[^>]*>', refused.content.decode())
    assert password_box is not None and "value=" not in password_box.group(0)
    token = re.search(r'name="held" value="([^"]+)"', refused.content.decode())
    assert token is not None
    assert _single(admin_client, "import", held=token.group(1)).status_code == 302


def test_a_held_file_is_only_for_the_admin_who_uploaded_it(admin_client: Client, make_admin: Any) -> None:
    directory_user(ALICE)
    checked = _single(admin_client, "check", file=upload("a.pfx", pfx_for(ALICE, "pw")), password="pw")
    token = re.search(r'name="held" value="([^"]+)"', checked.content.decode())
    assert token is not None
    other = Client()
    other.force_login(make_admin("intune_administrator", email="other@contoso.example"))
    response = _single(other, "import", held=token.group(1))
    assert response.status_code == 400 and "Choose the PFX file." in response.content.decode()
    assert not Certificate.objects.exists()


def test_every_page_that_takes_a_password_is_never_cached(admin_client: Client) -> None:
    batch = stored_certificate().batch
    assert batch is not None
    responses = [
        admin_client.get(reverse("certs:import")),
        admin_client.get(reverse("certs:bulk_import")),
        admin_client.post(reverse("certs:import_check"), {"password": "x"}, headers={"HX-Request": "true"}),
        admin_client.get(reverse("certs:batch", args=[batch.code])),
        admin_client.get(reverse("certs:batch", args=[batch.code]), headers={"HX-Request": "true"}),
        _bulk_post(admin_client, [("a.pfx", b"x")], "filename,password\nmissing.pfx,p\n"),
    ]
    for response in responses:
        assert "no-store" in response["Cache-Control"], response.request["PATH_INFO"]


def test_the_live_check_says_when_a_file_will_be_skipped_or_update_the_one_imported(
    admin_client: Client,
) -> None:
    directory_user(ALICE)
    data = pfx_for(ALICE, "pw")
    key = add_key()
    lifecycle.certificate_import(
        Actor.system(),
        entry=imports.Entry("a.pfx", data, "pw", ALICE, "smimeEncryption"),
        key=key,
        tags=[ScopeTag.default()],
    )
    fields = {"password": "pw", "upn": ALICE, "purpose": "smimeEncryption", "key": key.pk}
    skip = admin_client.post(
        reverse("certs:import_check"), {**fields, "file": upload("a.pfx", data), "on_duplicate": "skip"}
    ).content.decode()
    assert "Already imported" in skip and "Ready to import" not in skip and 'data-outcome="skip"' in skip
    update = admin_client.post(
        reverse("certs:import_check"), {**fields, "file": upload("a.pfx", data), "on_duplicate": "update"}
    ).content.decode()
    assert 'data-outcome="update"' in update and "replaces the file" in update
    other_purpose = admin_client.post(
        reverse("certs:import_check"),
        {**fields, "purpose": "smimeSigning", "file": upload("a.pfx", data), "on_duplicate": "skip"},
    ).content.decode()
    assert 'data-outcome="import"' in other_purpose and "Ready to import" in other_purpose


def test_the_live_check_names_the_user_who_already_holds_the_key(admin_client: Client) -> None:
    stored_certificate()
    directory_user(BOB)
    key = EncryptionKey.objects.get()
    response = admin_client.post(
        reverse("certs:import_check"),
        {
            "file": upload("b.pfx", pfx_for(BOB, "pw", kind=f"rsa-{ALICE}")),
            "password": "pw",
            "upn": BOB,
            "purpose": "smimeEncryption",
            "on_duplicate": "skip",
            "key": key.pk,
        },
    ).content.decode()
    assert "Cannot be imported" in response and "key_held_by_other_user" in response and ALICE in response


def test_the_live_check_reports_an_empty_file_with_its_code_and_names_what_it_still_needs(
    admin_client: Client,
) -> None:
    directory_user(ALICE)
    key = add_key()
    fields = {"password": "pw", "purpose": "smimeEncryption", "on_duplicate": "skip", "key": key.pk}
    empty = admin_client.post(
        reverse("certs:import_check"), {**fields, "upn": ALICE, "file": upload("empty.pfx", b"")}
    ).content.decode()
    assert "empty_file" in empty and "Cannot be imported" in empty and "marked above" not in empty
    no_user = admin_client.post(
        reverse("certs:import_check"), {**fields, "upn": "ghost@x.example", "file": upload("a.pfx", b"x")}
    ).content.decode()
    assert "marked above" not in no_user
    assert re.search(r"<strong>User</strong>: No user in the directory has this UPN", no_user)


def test_only_rows_a_password_can_fix_offer_a_password_box(admin_client: Client) -> None:
    directory_user(ALICE)
    batch = imports.batch_create(
        Actor.system(),
        kind=ImportBatch.Kind.BULK,
        key=add_key(),
        entries=[
            imports.Entry("wrong.pfx", pfx_for(ALICE, "right"), "wrong", ALICE),
            imports.Entry("junk.pfx", b"not a pfx", "pw", ALICE),
        ],
        tags=[ScopeTag.default()],
        enqueue=False,
    )
    pipeline.process_chunk(batch.pk, list(batch.items.values_list("pk", flat=True)))
    wrong, junk = batch.items.get(filename="wrong.pfx"), batch.items.get(filename="junk.pfx")
    page = admin_client.get(reverse("certs:batch", args=[batch.code])).content.decode()
    assert f'name="password-{wrong.pk}"' in page and f'name="password-{junk.pk}"' not in page
    assert "Retry failed rows" in page
    admin_client.post(
        reverse("certs:batch_retry", args=[batch.code]),
        {f"password-{wrong.pk}": "right", f"password-{junk.pk}": "anything"},
    )
    states = dict(batch.items.values_list("filename", "state"))
    assert states == {"wrong.pfx": "queued", "junk.pfx": "failed"}


def test_a_dry_run_is_imported_from_its_page_with_one_click(admin_client: Client) -> None:
    directory_user(ALICE)
    archive = _zip({"a.pfx": pfx_for(ALICE, "pw")})
    response = _bulk_post(
        admin_client, [("c.zip", archive)], f"filename,upn,password\na.pfx,{ALICE},pw\n", dry_run="on"
    )
    dry = ImportBatch.objects.get()
    assert response.status_code == 302 and dry.dry_run
    pipeline.process_chunk(dry.pk, list(dry.items.values_list("pk", flat=True)))
    page = admin_client.get(reverse("certs:batch", args=[dry.code])).content.decode()
    assert "Import these 1 files" in page and reverse("certs:batch_promote", args=[dry.code]) in page
    promoted = admin_client.post(reverse("certs:batch_promote", args=[dry.code]))
    real = ImportBatch.objects.get(promoted_from=dry)
    assert promoted.status_code == 302 and promoted["Location"] == reverse("certs:batch", args=[real.code])
    pipeline.process_chunk(real.pk, list(real.items.values_list("pk", flat=True)))
    assert Certificate.objects.filter(upn=ALICE, batch=real).exists()
    after = admin_client.get(reverse("certs:batch", args=[dry.code])).content.decode()
    assert reverse("certs:batch", args=[real.code]) in after and "Import these" not in after


def test_a_duplicate_manifest_row_names_the_line_it_repeats(admin_client: Client) -> None:
    response = _bulk_post(admin_client, [("a.pfx", b"x")], "filename,password\na.pfx,p\nb.pfx,p\nA.PFX,q\n")
    body = response.content.decode()
    assert response.status_code == 400 and "csv_duplicate_row" in body
    assert "Line 2 already names this file" in body and '<td class="num">4</td>' in body


def test_the_batch_page_says_why_an_intune_upload_failed(admin_client: Client) -> None:
    certificate = stored_certificate()
    reason = "HTTP 400 BadRequest: The UPN is not valid (request-id 1f2e, client-request-id 3c4d)"
    Certificate.objects.filter(pk=certificate.pk).update(graph_state=GraphState.FAILED, graph_error=reason)
    assert certificate.batch is not None
    page = admin_client.get(reverse("certs:batch", args=[certificate.batch.code])).content.decode()
    assert "Upload failed" in page and reason in page

"""The certificate and encryption key pages through the test client: the list and its export, a
certificate's page, deletes, the keys page, and who may do what."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from certs import imports, lifecycle
from certs.models import Certificate, EncryptionKey
from certs.tests.importing import ALICE, directory_user, pfx_for, public_pem, stored_certificate, upload
from portal.audit import Actor
from portal.models import ScopeTag

BOB = "bob@contoso.example"


@pytest.fixture(autouse=True)
def no_mfa_step(settings: Any) -> None:
    settings.PORTAL_ENFORCE_MFA = False


def test_an_admin_adds_a_pem_key_and_it_becomes_the_default(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("certs:key_add"),
        {
            "key_file": upload("key.pem", public_pem()),
            "provider_name": "Microsoft Software Key Storage Provider",
            "key_name": "PFXEncryptionKey",
            "default_padding": "oaepSha512",
        },
    )
    assert response.status_code == 302
    key = EncryptionKey.objects.get()
    assert key.is_default and key.size == 2048
    page = admin_client.get(reverse("certs:keys"))
    assert key.fingerprint[:20] in page.content.decode()


def test_a_private_key_upload_is_refused_with_its_code(admin_client: Client) -> None:
    from cryptography.hazmat.primitives import serialization

    from certs.tests.importing import connector_private_key

    pem = connector_private_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    response = admin_client.post(
        reverse("certs:key_add"),
        {
            "key_file": upload("k.pem", pem),
            "provider_name": "p",
            "key_name": "k",
            "default_padding": "oaepSha512",
        },
    )
    assert response.status_code == 400
    assert "private_key_given" in response.content.decode()
    assert not EncryptionKey.objects.exists()


def test_the_list_shows_only_the_certificates_of_one_import(admin_client: Client) -> None:
    first = stored_certificate()
    directory_user(BOB)
    lifecycle.certificate_import(
        Actor.system(),
        entry=imports.Entry("b.pfx", pfx_for(BOB, "pw"), "pw", BOB, "smimeEncryption"),
        key=first.encryption_key,
        tags=[ScopeTag.default()],
    )
    assert first.batch is not None
    page = admin_client.get(reverse("certs:list"), {"batch": str(first.batch.code)}).content.decode()
    assert ALICE in page and BOB not in page and 'data-testid="batch-filter"' in page


def test_the_csv_export_escapes_spreadsheet_formulas(admin_client: Client) -> None:
    cert = stored_certificate()
    Certificate.objects.filter(pk=cert.pk).update(subject="=HYPERLINK(1)")
    response = admin_client.get(reverse("certs:list") + "?format=csv")
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert "'=HYPERLINK(1)" in body and cert.thumbprint in body


def test_the_list_filters_by_expiry_window(admin_client: Client) -> None:
    cert = stored_certificate()
    inside = admin_client.get(reverse("certs:list") + "?expiring=400")
    outside = admin_client.get(reverse("certs:list") + "?expiring=7")
    assert cert.thumbprint in inside.content.decode()
    assert cert.thumbprint not in outside.content.decode()
    assert admin_client.get(reverse("certs:list") + "?expiring=abc").status_code == 400


def test_the_user_page_lists_the_users_certificates(admin_client: Client) -> None:
    cert = stored_certificate()
    page = admin_client.get(reverse("directory:user", args=[cert.user.object_id]))
    assert cert.thumbprint in page.content.decode()


def test_deleting_needs_the_thumbprint_typed(admin_client: Client) -> None:
    cert = stored_certificate()
    url = reverse("certs:delete", args=[cert.code])
    assert admin_client.post(url, {"confirm": "nope"}).status_code == 400
    assert admin_client.post(url, {"confirm": cert.thumbprint}).status_code == 302
    assert not Certificate.objects.exists()


def test_help_desk_sees_everything_and_changes_nothing(helpdesk_client: Client) -> None:
    cert = stored_certificate()
    batch = cert.batch
    assert batch is not None
    for url in (
        reverse("certs:list"),
        reverse("certs:detail", args=[cert.code]),
        reverse("certs:batch", args=[batch.code]),
        reverse("certs:batches"),
        reverse("certs:keys"),
        reverse("directory:user", args=[cert.user.object_id]),
    ):
        assert helpdesk_client.get(url).status_code == 200, url
    for method, url in (
        ("get", reverse("certs:import")),
        ("get", reverse("certs:bulk_import")),
        ("post", reverse("certs:delete", args=[cert.code])),
        ("post", reverse("certs:batch_cancel", args=[batch.code])),
        ("post", reverse("certs:batch_retry", args=[batch.code])),
        ("post", reverse("certs:batch_promote", args=[batch.code])),
        ("post", reverse("certs:key_default", args=[cert.encryption_key.code])),
        ("get", reverse("certs:key_add")),
        ("post", reverse("certs:remove_expired", args=[cert.user.object_id])),
    ):
        assert getattr(helpdesk_client, method)(url).status_code == 403, url
    assert Certificate.objects.exists()


def test_an_admin_scoped_to_another_tag_sees_the_certificate_through_its_user_but_cannot_delete_it(
    make_admin: Any, make_tag: Any
) -> None:
    cert = stored_certificate()
    other = make_admin("intune_administrator", tags=[make_tag("Paris")])
    client = Client()
    client.force_login(other)
    detail = client.get(reverse("certs:detail", args=[cert.code])).content.decode()
    assert cert.thumbprint in detail
    assert reverse("certs:delete", args=[cert.code]) not in detail
    # Its import is not theirs: shown, but not linked to a page they cannot open.
    assert reverse("certs:batch", args=[cert.batch.code]) not in detail  # type: ignore[union-attr]
    assert cert.thumbprint in client.get(reverse("certs:list")).content.decode()
    assert client.post(reverse("certs:delete", args=[cert.code])).status_code == 403


def test_wrong_methods_get_405(admin_client: Client) -> None:
    cert = stored_certificate()
    assert admin_client.get(reverse("certs:key_default", args=[cert.encryption_key.code])).status_code == 405
    assert admin_client.post(reverse("certs:list")).status_code == 405

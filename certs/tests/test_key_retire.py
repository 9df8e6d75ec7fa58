"""Retiring an encryption key: only once no password here or in Intune is wrapped to it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from certs.models import Certificate, EncryptionKey
from certs.tests.importing import stored_certificate
from portal.models import AuditEvent


@pytest.fixture(autouse=True)
def no_mfa_step(settings: Any) -> None:
    settings.PORTAL_ENFORCE_MFA = False


def _second_key(name: str = "NewKey") -> EncryptionKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from certs import keys
    from portal.audit import Actor
    from portal.models import ScopeTag

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return keys.key_add(
        Actor.system(),
        data=pem,
        provider_name="Microsoft Software Key Storage Provider",
        key_name=name,
        default_padding="oaepSha512",
        make_default=False,
        tags=[ScopeTag.default()],
    )


def test_a_key_that_still_wraps_a_password_is_not_retired_and_the_page_says_why(admin_client: Client) -> None:
    cert = stored_certificate()
    key = cert.encryption_key
    _second_key()
    EncryptionKey.objects.filter(pk=key.pk).update(is_default=False)
    before = AuditEvent.objects.count()

    page = admin_client.post(reverse("certs:key_retire", args=[key.code]), follow=True).content.decode()

    assert "key_in_use" in page and "1 certificate password(s) in the portal" in page
    assert EncryptionKey.objects.filter(pk=key.pk).exists()
    assert AuditEvent.objects.count() == before


def test_the_default_key_is_not_retired(admin_client: Client) -> None:
    key = _second_key()
    EncryptionKey.objects.filter(pk=key.pk).update(is_default=True)

    page = admin_client.post(reverse("certs:key_retire", args=[key.code]), follow=True).content.decode()

    assert "key_is_default" in page
    assert EncryptionKey.objects.filter(pk=key.pk).exists()


def test_a_key_nothing_depends_on_is_retired_with_an_audit_event(admin_client: Client) -> None:
    cert = stored_certificate()
    spare = _second_key("Spare")
    assert not spare.is_default and cert.encryption_key.is_default

    response = admin_client.post(reverse("certs:key_retire", args=[spare.code]))

    assert response.status_code == 302
    assert not EncryptionKey.objects.filter(pk=spare.pk).exists()
    event = AuditEvent.objects.filter(activity="Retire encryption key").get()
    assert spare.key_name in str(event.resources)
    assert Certificate.objects.filter(pk=cert.pk).exists()
    assert "Retire" in admin_client.get(reverse("certs:keys")).content.decode()


def test_the_help_desk_cannot_retire_a_key(helpdesk_client: Client) -> None:
    spare = _second_key("Spare")
    assert helpdesk_client.post(reverse("certs:key_retire", args=[spare.code])).status_code == 403
    assert "Retire</button>" not in helpdesk_client.get(reverse("certs:keys")).content.decode()
    assert EncryptionKey.objects.filter(pk=spare.pk).exists()

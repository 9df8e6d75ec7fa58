"""Key rotation reaches Intune: re-wrapped passwords are patched into Intune's records."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from certs.hooks import key_retirement_blockers
from certs.models import Certificate, EncryptionKey
from certs.signals import certificates_rewrapped
from connectors.models import ConnectorJob, KeyRotation
from devtools.emulator.server import Emulator
from graph import key_resend, uploads
from graph.client import GraphClient
from graph.models import TenantConnection, UploadRecord
from portal.models import ScopeTag, User

pytestmark = pytest.mark.django_db


def _rewrap(certificate: Certificate, key: EncryptionKey) -> bytes:
    """What a connector's re-wrap leaves behind: a new ciphertext for the new key, announced in its transaction."""
    ciphertext = os.urandom(256)
    with transaction.atomic():
        Certificate.objects.filter(pk=certificate.pk).update(
            encrypted_password=ciphertext, encryption_key=key
        )
        certificates_rewrapped.send(Certificate, certificate_ids=[certificate.pk])
    return ciphertext


def test_a_rewrapped_password_is_patched_into_intune_with_the_new_key_names(
    emulator: Emulator,
    connected: TenantConnection,
    portal_graph: GraphClient,
    make_certificate: Callable[..., Certificate],
) -> None:
    certificate = make_certificate()
    record = uploads.queue_upload(certificate)
    assert uploads.upload(record.pk, client=portal_graph) == "synced"
    old_key = certificate.encryption_key
    new_key = EncryptionKey.objects.create(
        provider_name="Microsoft Software Key Storage Provider",
        key_name="PFXEncryptionKey2027",
        size=2048,
        fingerprint=uuid.uuid4().hex,
        public_key_pem="-",
    )
    counts = key_resend.rotation_counts([certificate.pk], old_key.fingerprint, new_key.fingerprint)
    assert (counts["in_intune"], counts["resent"], counts["on_old_key"]) == (1, 0, 1)

    ciphertext = _rewrap(certificate, new_key)
    # Re-wrapped in the portal, but Intune still has the old wrapping: the old key must stay.
    assert key_retirement_blockers(old_key) == [
        f"Intune still holds 1 certificate password(s) wrapped to {old_key}; they are re-sent after rotation."
    ]
    record.refresh_from_db()
    assert record.get_state_display() == "Password re-wrapped, to be re-sent"
    assert key_resend.resend(record.pk, client=portal_graph) == "resent"

    stored = emulator.state.pfx[record.graph_id]
    assert stored["keyName"] == "PFXEncryptionKey2027"
    assert stored["encryptedPfxPassword"] == base64.b64encode(ciphertext).decode()
    assert emulator.state.stats.posts == 1  # patched in place, never created again
    counts = key_resend.rotation_counts([certificate.pk], old_key.fingerprint, new_key.fingerprint)
    assert (counts["resent"], counts["waiting"], counts["on_old_key"]) == (1, 0, 0)
    assert key_retirement_blockers(old_key) == []
    record.refresh_from_db()
    assert record.state == UploadRecord.State.SYNCED and record.key_fingerprint == new_key.fingerprint


def test_a_certificate_not_yet_in_intune_is_not_resent(
    emulator: Emulator, connected: TenantConnection, make_certificate: Callable[..., Certificate]
) -> None:
    certificate = make_certificate()
    new_key = EncryptionKey.objects.create(
        provider_name="p", key_name="k2", size=2048, fingerprint=uuid.uuid4().hex, public_key_pem="-"
    )
    _rewrap(certificate, new_key)
    assert not UploadRecord.objects.filter(state=UploadRecord.State.RESEND).exists()


def test_the_rotation_page_counts_certificates_resent_to_intune(
    emulator: Emulator,
    connected: TenantConnection,
    portal_graph: GraphClient,
    make_certificate: Callable[..., Certificate],
    intune_admin: User,
    client: Client,
    settings: Any,
) -> None:
    settings.PORTAL_ENFORCE_MFA = False
    certificate = make_certificate()
    record = uploads.queue_upload(certificate)
    uploads.upload(record.pk, client=portal_graph)
    old_key = certificate.encryption_key
    new_key = EncryptionKey.objects.create(
        provider_name="p", key_name="k2", size=2048, fingerprint=uuid.uuid4().hex, public_key_pem="-"
    )
    rotation = KeyRotation.objects.create(
        from_fingerprint=old_key.fingerprint,
        to_fingerprint=new_key.fingerprint,
        from_label="old key",
        to_label="new key",
        total=1,
        created_by_name="test",
    )
    rotation.scope_tags.set([ScopeTag.default()])
    ConnectorJob.objects.create(
        rotation=rotation,
        certificate_id=certificate.pk,
        from_fingerprint=old_key.fingerprint,
        to_fingerprint=new_key.fingerprint,
    )
    client.force_login(intune_admin)
    url = reverse("connectors:rotation", args=[rotation.code])
    page = client.get(url).content.decode()
    assert "0 of 1 certificate in Intune re-sent with the new key" in page
    assert "Intune still holds 1 password wrapped to old key" in page
    _rewrap(certificate, new_key)
    key_resend.resend(record.pk, client=portal_graph)
    page = client.get(url).content.decode()
    assert "1 of 1 certificate in Intune re-sent with the new key" in page
    assert "Intune holds no password wrapped to old key any more" in page

"""Staged PFX passwords: sealed with the staging keyring, readable across the move to the shared sealer."""

from __future__ import annotations

import base64
import secrets

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from certs import imports, pipeline, staging
from certs.models import Certificate, ImportBatch, ImportItem
from certs.tests.importing import add_key, directory_user, pfx_for
from portal.audit import Actor
from portal.lib.tests.test_sealing import STAGED, STAGING_KEY
from portal.models import ScopeTag

ALICE = "alice@contoso.example"


def _sealed_the_previous_way(key: bytes, password: str, context: str) -> bytes:
    # The format the staging code wrote on its own: version byte, nonce, AES-256-GCM with the context bound.
    nonce = secrets.token_bytes(12)
    return b"\x01" + nonce + AESGCM(key).encrypt(nonce, password.encode(), context.encode())


def test_a_password_staged_by_the_previous_code_still_opens(settings) -> None:
    settings.PORTAL_STAGING_KEY = STAGING_KEY
    assert staging.unseal(STAGED, context="batch:7:3") == "Export-Password-\u00e9 1"
    with pytest.raises(staging.StagingError):
        staging.unseal(STAGED, context="batch:7:4")


def test_a_staged_password_does_not_open_once_its_key_is_gone(settings) -> None:
    sealed = staging.seal("pw", context="batch:1:0")
    settings.PORTAL_STAGING_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
    with pytest.raises(staging.StagingError):
        staging.unseal(sealed, context="batch:1:0")


@pytest.mark.django_db
def test_an_import_staged_before_the_shared_sealer_is_stored_by_the_new_worker(settings) -> None:
    key = secrets.token_bytes(32)
    settings.PORTAL_STAGING_KEY = base64.b64encode(key).decode()
    directory_user(ALICE)
    batch = imports.batch_create(
        Actor.system(),
        kind=ImportBatch.Kind.BULK,
        key=add_key(),
        entries=[imports.Entry("alice.pfx", pfx_for(ALICE, "Alice-Pass-1"), "Alice-Pass-1", ALICE)],
        tags=[ScopeTag.default()],
        enqueue=False,
    )
    item = batch.items.get()
    ImportItem.objects.filter(pk=item.pk).update(
        staged_password=_sealed_the_previous_way(key, "Alice-Pass-1", f"{batch.code}:{item.position}")
    )
    pipeline.process_chunk(batch.pk, [item.pk])
    assert batch.items.get().state == "stored"
    assert Certificate.objects.filter(upn=ALICE).exists()

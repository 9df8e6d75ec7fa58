"""The stored Graph credential: sealed with the secrets keyring, earlier Fernet tokens still open."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from certs import staging
from graph import secrets
from graph.models import TenantConnection
from portal.lib import sealing
from portal.lib.tests.test_sealing import CREDENTIAL, SECRETS_KEY


@pytest.mark.django_db
def test_a_credential_stored_as_a_fernet_token_by_an_earlier_release_still_opens(settings) -> None:
    settings.PORTAL_SECRETS_KEY = SECRETS_KEY
    TenantConnection.objects.create(
        pk=TenantConnection.SINGLETON, tenant_id="t", client_id="c", credential_encrypted=CREDENTIAL
    )
    stored = TenantConnection.objects.get().credential_encrypted
    assert secrets.unseal(stored) == {"secret": "client-secret-\u00e9", "kind": "secret"}


@pytest.mark.django_db
def test_a_credential_sealed_now_is_read_back_from_the_database(settings) -> None:
    TenantConnection.objects.create(
        pk=TenantConnection.SINGLETON,
        tenant_id="t",
        client_id="c",
        credential_encrypted=secrets.seal({"secret": "s3cret"}),
    )
    stored = TenantConnection.objects.get().credential_encrypted
    assert b"s3cret" not in bytes(stored)
    assert secrets.unseal(stored) == {"secret": "s3cret"}


def test_a_credential_opens_after_its_key_moves_behind_a_new_one(settings) -> None:
    old = Fernet.generate_key().decode()
    settings.PORTAL_SECRETS_KEY = old
    sealed = secrets.seal({"secret": "s"})
    settings.PORTAL_SECRETS_KEY = f"{sealing.new_key()},{old}"
    assert secrets.unseal(sealed) == {"secret": "s"}
    settings.PORTAL_SECRETS_KEY = sealing.new_key()
    with pytest.raises(secrets.SecretUnreadable):
        secrets.unseal(sealed)


def test_a_staged_password_is_not_accepted_as_a_credential(settings) -> None:
    # Both use their own context, so a value copied between the two fields does not open.
    settings.PORTAL_SECRETS_KEY = settings.PORTAL_STAGING_KEY
    with pytest.raises(secrets.SecretUnreadable):
        secrets.unseal(staging.seal('{"secret": "s"}', context="batch:1:0"))

"""An import for users Intune does not know says so on its page (their certificates are held, not uploaded)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from certs import imports, lifecycle
from certs.tests.importing import add_key, directory_user, pfx_for
from directory.models import DirectoryUser, UserSource
from portal.audit import Actor
from portal.models import ScopeTag, User

pytestmark = pytest.mark.django_db

ALICE = "alice@contoso.example"


@pytest.fixture(autouse=True)
def no_mfa_step(settings: Any) -> None:
    settings.PORTAL_ENFORCE_MFA = False


def test_the_batch_page_warns_about_certificates_of_users_imported_from_csv(intune_admin: User) -> None:
    directory_user(ALICE)
    item = lifecycle.certificate_import(
        Actor.system(),
        entry=imports.Entry("a.pfx", pfx_for(ALICE, "pw"), "pw", ALICE, "smimeEncryption"),
        key=add_key(),
        tags=[ScopeTag.default()],
    )
    assert item.certificate is not None and item.certificate.batch is not None
    client = Client()
    client.force_login(intune_admin)
    url = reverse("certs:batch", args=[item.certificate.batch.code])
    assert 'data-testid="users-not-in-entra"' not in client.get(url).content.decode()

    DirectoryUser.objects.filter(upn=ALICE).update(source=UserSource.CSV)
    page = client.get(url).content.decode()
    assert 'data-testid="users-not-in-entra"' in page
    assert "1 certificate of this import belongs to users Intune does not know" in page

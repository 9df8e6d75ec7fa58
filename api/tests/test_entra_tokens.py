"""Entra ID application tokens, issued by the emulator's identity platform, acting for the admin who
trusted the application."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
import requests

from api import tokens
from api.auth import _jwks
from api.models import EntraApplication
from api.tests.conftest import ApiClient
from certs.tests.importing import add_key
from devtools.emulator import oidc
from devtools.emulator.server import Emulator
from portal.audit import Actor
from portal.models import AuditEvent, User

pytestmark = pytest.mark.django_db

AUDIENCE = "api://pfx-portal"
APP_ID = "6f0d2a39-1a77-4d39-9b36-2f0f5d6c7a11"
APP_SECRET = "ca-export-secret"


@pytest.fixture
def entra(emulator: Emulator, settings: Any) -> Emulator:
    settings.ENTRA_TENANT_ID = emulator.config.tenant_id
    settings.ENTRA_LOGIN_URL = emulator.url
    settings.API_ENTRA_AUDIENCE = AUDIENCE
    settings.API_ENTRA_CA_FILE = str(emulator.ca_path)
    _jwks.cache_clear()
    oidc.state_for(emulator.httpd).apps[APP_ID] = APP_SECRET
    return emulator


def app_token(emulator: Emulator, scope: str = f"{AUDIENCE}/.default") -> str:
    answer = requests.post(
        f"{emulator.url}/{emulator.config.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": APP_ID,
            "client_secret": APP_SECRET,
            "scope": scope,
        },
        verify=str(emulator.ca_path),
        timeout=10,
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def test_a_trusted_applications_token_acts_for_the_admin_who_trusted_it(
    entra: Emulator, intune_admin: User
) -> None:
    key = add_key()
    tokens.application_add(
        Actor.for_user(intune_admin), user=intune_admin, name="CA export", client_id=APP_ID
    )
    client = ApiClient(app_token(entra))
    assert [k["code"] for k in client.get("/encryption-keys").json()] == [str(key.code)]
    assert client.post(f"/encryption-keys/{key.code}/default").status_code == 200
    event = AuditEvent.objects.get(activity="Set default encryption key")
    assert event.actor_type == AuditEvent.ActorType.APPLICATION
    assert event.actor_id == intune_admin.pk
    assert APP_ID in event.actor_name and "CA export" in event.actor_name


def test_an_application_nobody_trusted_is_refused(entra: Emulator) -> None:
    response = ApiClient(app_token(entra)).get("/encryption-keys")
    assert response.status_code == 401
    assert response.json()["code"] == "application_not_trusted"


def test_a_token_for_another_api_is_refused(entra: Emulator, intune_admin: User) -> None:
    tokens.application_add(
        Actor.for_user(intune_admin), user=intune_admin, name="CA export", client_id=APP_ID
    )
    response = ApiClient(app_token(entra, "api://someone-else/.default")).get("/encryption-keys")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_an_application_no_longer_trusted_is_refused_at_once(entra: Emulator, intune_admin: User) -> None:
    app = tokens.application_add(
        Actor.for_user(intune_admin), user=intune_admin, name="CA export", client_id=APP_ID
    )
    client = ApiClient(app_token(entra))
    assert client.get("/encryption-keys").status_code == 200
    tokens.application_revoke(Actor.for_user(intune_admin), application=app)
    assert client.get("/encryption-keys").status_code == 401
    assert EntraApplication.objects.get().revoked_at is not None


def test_a_token_signed_by_another_key_is_refused(entra: Emulator, intune_admin: User) -> None:
    tokens.application_add(
        Actor.for_user(intune_admin), user=intune_admin, name="CA export", client_id=APP_ID
    )
    claims = jwt.decode(app_token(entra), options={"verify_signature": False})
    forger = oidc.OidcState()
    forger.kid = oidc.state_for(entra.httpd).kid  # the same key id, another key
    response = ApiClient(forger.sign(claims)).get("/encryption-keys")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"

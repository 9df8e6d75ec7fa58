from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from conftest import PASSWORD
from portal.models import User

pytestmark = pytest.mark.django_db

ENTRA = {
    "microsoft": {
        "APPS": [
            {
                "client_id": "11111111-2222-3333-4444-555555555555",
                "secret": "s3cr3t",
                "settings": {"tenant": "contoso.onmicrosoft.com"},
            }
        ],
        "SCOPE": ["User.Read"],
    }
}


def test_microsoft_sign_in_is_hidden_until_entra_is_configured(client: Client, settings: Any) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {}
    assert "Microsoft" not in client.get("/accounts/login/").content.decode()

    settings.SOCIALACCOUNT_PROVIDERS = ENTRA
    page = client.get("/accounts/login/").content.decode()
    assert "Microsoft" in page
    assert "/accounts/microsoft/login/" in page


def test_nobody_can_sign_themselves_up(client: Client) -> None:
    response = client.post(
        "/accounts/signup/",
        {"email": "mallory@evil.example", "password1": "x9!longpassword", "password2": "x9!longpassword"},
    )
    assert not User.objects.filter(email="mallory@evil.example").exists()
    assert "closed" in response.content.decode().lower()


def test_a_password_reset_is_sent_by_email(client: Client, make_admin: Callable[..., User]) -> None:
    make_admin("help_desk_operator", email="pat@contoso.example")

    client.post("/accounts/password/reset/", {"email": "pat@contoso.example"})

    assert len(mail.outbox) == 1
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


def test_repeated_failed_sign_ins_are_slowed_down(client: Client, make_admin: Callable[..., User]) -> None:
    make_admin("help_desk_operator", email="sam@contoso.example")
    for _ in range(6):
        response = client.post("/accounts/login/", {"login": "sam@contoso.example", "password": "wrong"})

    assert "Too many failed login attempts" in response.content.decode()
    # Even the right password waits until the pause is over.
    response = client.post("/accounts/login/", {"login": "sam@contoso.example", "password": PASSWORD})
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "url", ["/accounts/microsoft/login/", "/accounts/microsoft/login/callback/?code=x&state=y"]
)
def test_microsoft_sign_in_pages_are_not_found_until_entra_is_configured(
    client: Client, settings: Any, url: str
) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {}
    response = client.get(url)
    assert response.status_code == 404
    assert 'data-error-code="not_found"' in response.content.decode()

    settings.SOCIALACCOUNT_PROVIDERS = ENTRA
    assert client.get("/accounts/microsoft/login/").status_code == 200  # allauth's "continue" page


def test_a_bad_host_header_gets_400_in_production(client: Client, settings: Any) -> None:
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["portal.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert 'data-error-code="bad_request"' in response.content.decode()
    assert client.get("/healthz", HTTP_HOST="portal.example.com", secure=True).status_code == 200

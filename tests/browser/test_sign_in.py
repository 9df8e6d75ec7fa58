from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
)
from playwright.sync_api import Page, expect

from conftest import PASSWORD
from portal.models import User

pytestmark = pytest.mark.django_db(transaction=True)


def current_totp(secret: str) -> str:
    counter = int(time.time()) // mfa_settings.TOTP_PERIOD
    return str(format_hotp_value(hotp_value(secret, counter)))


def test_an_administrator_signs_in_with_a_password_and_a_totp_code(
    page: Page, make_admin: Callable[..., User]
) -> None:
    admin = make_admin("intune_administrator", email="megan@contoso.example")
    secret = generate_totp_secret()
    TOTP.activate(admin, secret)

    page.goto("/")
    page.get_by_label("Email").fill("megan@contoso.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code").fill(current_totp(secret))
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    expect(page.get_by_test_id("signed-in-admin")).to_contain_text("Intune Administrator")


def test_a_wrong_totp_code_keeps_the_administrator_out(page: Page, make_admin: Callable[..., User]) -> None:
    admin = make_admin("intune_administrator", email="adele@contoso.example")
    TOTP.activate(admin, generate_totp_secret())

    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("adele@contoso.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_text("Incorrect code")).to_be_visible()
    page.goto("/")
    expect(page.get_by_role("heading", name="Home", exact=True)).to_have_count(0)
    assert "/accounts/" in page.url


def test_an_administrator_without_mfa_must_set_it_up_before_going_on(
    page: Page, make_admin: Callable[..., User]
) -> None:
    make_admin("intune_administrator", email="lidia@contoso.example")

    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("lidia@contoso.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # Setting up MFA asks for the password again, then shows the secret to enrol.
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    secret = page.locator("#authenticator_secret").input_value()
    page.get_by_label("Authenticator code").fill(current_totp(secret))
    page.get_by_role("button", name="Activate").click()

    expect(page.get_by_text("Recovery codes").first).to_be_visible()
    page.goto("/")
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()

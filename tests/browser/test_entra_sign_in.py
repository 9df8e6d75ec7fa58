""" "Sign in with Microsoft" end to end: Chromium, the portal, and the emulator's OpenID Connect sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from allauth.socialaccount.models import SocialAccount
from playwright.sync_api import Browser, Page, expect

from devtools.emulator.server import Emulator
from portal import services
from portal.audit import Actor
from portal.models import Role, RoleAssignment, User
from portal.settings import entra_provider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def entra(emulator: Emulator, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    cfg = emulator.config
    settings.SOCIALACCOUNT_PROVIDERS = entra_provider(
        tenant=cfg.tenant_id,
        client_id=cfg.client_id,
        secret=cfg.client_secret,
        login_url=emulator.url,
        graph_url=emulator.url,
    )
    # The portal's calls to the emulator (code for tokens, then /me) trust its throwaway CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emulator.ca_path))
    return emulator


@pytest.fixture
def entra_page(browser: Browser, live_server: Any) -> Iterator[Page]:
    # The browser visits the emulator's sign-in page, served with the emulator's own CA.
    ctx = browser.new_context(base_url=str(live_server), ignore_https_errors=True)
    ctx.set_default_timeout(15_000)
    yield ctx.new_page()
    ctx.close()


def _directory_user(emulator: Emulator) -> dict[str, Any]:
    with emulator.state.lock:
        return next(
            u for u in emulator.state.users.values() if u.get("mail") and u.get("accountEnabled", True)
        )


def _sign_in_with_microsoft(page: Page, login: str) -> None:
    page.goto("/")
    page.get_by_role("link", name="Microsoft").click()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Sign in to your account")).to_be_visible()
    page.get_by_label("Email, phone, or Skype").fill(login)
    page.get_by_role("button", name="Sign in").click()


def test_an_invited_admins_first_sign_in_with_microsoft_lands_on_home(
    entra: Emulator, entra_page: Page, built_in_roles: dict[str, Role]
) -> None:
    person = _directory_user(entra)
    assignment = RoleAssignment.objects.create(role=built_in_roles["help_desk_operator"], name="Help desk")
    admin = services.admin_invite(
        actor=Actor.system(),
        email=person["mail"],
        display_name=person["displayName"],
        assignments=[assignment],
    )
    assert not admin.has_usable_password()

    _sign_in_with_microsoft(entra_page, person["userPrincipalName"])

    expect(entra_page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    expect(entra_page.get_by_test_id("signed-in-admin")).to_contain_text("Help Desk Operator")
    account = SocialAccount.objects.get(provider="microsoft")
    assert account.user_id == admin.pk
    assert account.uid == person["id"]

    # The second sign-in finds the connected account.
    entra_page.context.clear_cookies()
    _sign_in_with_microsoft(entra_page, person["userPrincipalName"])
    expect(entra_page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    assert SocialAccount.objects.count() == 1


def test_a_directory_user_who_was_not_invited_is_not_let_in(entra: Emulator, entra_page: Page) -> None:
    person = _directory_user(entra)

    _sign_in_with_microsoft(entra_page, person["userPrincipalName"])

    expect(entra_page.get_by_role("heading", name="Home", exact=True)).to_have_count(0)
    assert not User.objects.filter(email__iexact=person["mail"]).exists()
    assert not SocialAccount.objects.exists()


def test_an_unknown_name_is_refused_on_the_sign_in_page(entra: Emulator, entra_page: Page) -> None:
    entra_page.goto("/")
    entra_page.get_by_role("link", name="Microsoft").click()
    entra_page.get_by_role("button", name="Continue").click()
    entra_page.get_by_label("Email, phone, or Skype").fill("nobody@fabrikam.example")
    entra_page.get_by_role("button", name="Sign in").click()
    expect(entra_page.get_by_role("alert")).to_contain_text("AADSTS50034")

from __future__ import annotations

from collections.abc import Callable

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from playwright.sync_api import Page, expect

from portal.models import User

pytestmark = pytest.mark.django_db(transaction=True)


def with_mfa(user: User) -> User:
    TOTP.activate(user, generate_totp_secret())
    return user


def test_an_administrator_reaches_every_navigation_section(
    page: Page, make_admin: Callable[..., User], sign_in_as: Callable[[User], None]
) -> None:
    admin = with_mfa(make_admin(email="owner@contoso.example"))
    admin.is_superuser = True
    admin.save()
    sign_in_as(admin)
    broken: list[str] = []
    page.on("response", lambda r: broken.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    page.goto("/")
    labels = page.locator("nav.sidenav a").all_inner_texts()
    assert {"Home", "Devices", "Users", "Groups", "Tenant administration", "Troubleshooting + support"} <= {
        label.strip() for label in labels
    }
    for label in labels:
        page.locator("nav.sidenav").get_by_role("link", name=label.strip(), exact=True).click()
        expect(page.locator("h1").first).to_be_visible()
        expect(page.locator("nav.sidenav [aria-current=page]")).to_have_text(label.strip())
        expect(page.locator("[data-error-code]")).to_have_count(0)
    # Every page and everything it loads (styles, scripts, icons, the favicon) answers.
    assert broken == []

    page.locator("nav.sidenav").get_by_role("link", name="Tenant administration").click()
    tiles = page.locator("a.tile").all()
    assert len(tiles) >= 3
    for name in [t.inner_text().split("\n")[0].strip() for t in tiles]:
        page.goto("/tenant-admin/")
        page.locator("a.tile", has_text=name).first.click()
        expect(page.locator("h1").first).to_be_visible()
        expect(page.locator("[data-error-code]")).to_have_count(0)


def test_a_help_desk_operator_is_refused_a_write_action(
    page: Page, make_admin: Callable[..., User], sign_in_as: Callable[[User], None]
) -> None:
    sign_in_as(make_admin("help_desk_operator", email="helpdesk@contoso.example"))

    page.goto("/users/")
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Import")).to_have_count(0)

    page.goto("/users/import/")
    expect(page.get_by_role("heading", name="You don't have permission to do that")).to_be_visible()
    expect(page.locator("[data-error-code=permission_denied]")).to_be_visible()


def test_the_audit_log_shows_a_change_just_made(
    page: Page, make_admin: Callable[..., User], sign_in_as: Callable[[User], None]
) -> None:
    admin = with_mfa(make_admin("intune_role_administrator", email="roles@contoso.example"))
    admin.is_superuser = False
    sign_in_as(admin)

    page.goto("/tenant-admin/roles/scope-tags/")
    page.get_by_role("link", name="Create scope tag").click()
    page.get_by_label("Name").fill("Finance")
    page.get_by_label("Description").fill("Finance department devices")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("Finance").first).to_be_visible()

    page.goto("/tenant-admin/audit-logs/")
    row = page.locator("table.data tbody tr", has_text="Create scope tag").first
    expect(row).to_contain_text("roles@contoso.example")
    row.get_by_role("link", name="Create scope tag").click()
    expect(page.get_by_text("Finance department devices")).to_be_visible()

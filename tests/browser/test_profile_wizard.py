"""A Windows profile created in a real browser, through every wizard step."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from directory.models import Group
from portal.models import User
from profiles.models import Profile
from profiles.tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signed_in_page(page: Page, make_admin: Callable[..., User], sign_in_as: Callable[[User], None]) -> Page:
    sign_in_as(make_admin("policy_and_profile_manager"))
    return page


def test_an_admin_creates_a_windows_profile_through_every_step(signed_in_page: Page) -> None:
    page = signed_in_page
    sales = f.group("Sales")
    f.group("Kiosks", Group.Kind.DEVICE)
    f.device("PC-ALICE", f.user("alice@contoso.example", sales))

    page.goto("/profiles/")
    page.get_by_role("link", name="Create profile").click()
    page.get_by_label("Platform").select_option("windows10")
    page.get_by_role("button", name="Create").click()

    # Basics: an empty name fails on the server.
    page.wait_for_selector('form[data-step="basics"]')
    page.get_by_role("button", name="Next").click()
    page.wait_for_selector("text=This field is required.")
    page.get_by_label("Name").fill("Encryption for Windows")
    page.get_by_label("Description").fill("S/MIME encryption certificates")
    page.get_by_role("button", name="Next").click()

    # Configuration settings, then Back: the basics are still there.
    page.wait_for_selector('form[data-step="settings"]')
    page.get_by_label("S/MIME encryption").check()
    page.get_by_label("Enroll to Software KSP").check()
    page.get_by_role("button", name="Back").click()
    page.wait_for_selector('form[data-step="basics"]')
    assert page.get_by_label("Name").input_value() == "Encryption for Windows"
    page.get_by_role("button", name="Next").click()
    page.wait_for_selector('form[data-step="settings"]')
    assert page.get_by_label("Enroll to Software KSP").is_checked()
    page.get_by_role("button", name="Next").click()

    page.wait_for_selector('form[data-step="scope"]')
    assert page.get_by_label("Default").is_checked()
    page.get_by_role("button", name="Next").click()

    page.wait_for_selector('form[data-step="assignments"]')
    page.get_by_label("Included groups").select_option(label="Sales (user group)")
    page.get_by_role("button", name="Next").click()

    # Applicability rules: a range missing its maximum fails, then passes.
    page.wait_for_selector('form[data-step="rules"]')
    page.get_by_label("Property").select_option("osVersion")
    page.get_by_label("Minimum OS version").fill("10.0.19045.0")
    page.get_by_role("button", name="Next").click()
    page.wait_for_selector("text=Both the minimum and the maximum version are required.")
    page.get_by_label("Maximum OS version").fill("10.0.26100.9999")
    page.get_by_role("button", name="Next").click()

    page.wait_for_selector('form[data-step="review"]')
    assert page.get_by_test_id("review-name").inner_text() == "Encryption for Windows"
    assert "Users reached" in page.get_by_test_id("preview").inner_text()
    page.get_by_role("button", name="Create").click()

    page.wait_for_selector("h1:has-text('Encryption for Windows')")
    assert "Device and user check-in status" in page.content()
    profile = Profile.objects.get()
    assert profile.key_storage_provider == "useSoftwareKsp"
    assert profile.applicability_rules.get().max_version == "10.0.26100.9999"
    assert [a.group.display_name for a in profile.assignments.all()] == ["Sales"]

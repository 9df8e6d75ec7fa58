"""The creation wizard through the test client: server validation per step, Back, htmx, Create."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from directory.models import Group, Platform
from portal.models import AuditEvent
from profiles.models import Profile
from profiles.tests import factories as f


@pytest.fixture
def manager_client(make_admin, client: Client) -> Client:
    client.force_login(make_admin("policy_and_profile_manager"))
    return client


def start(client: Client, platform: str = Platform.WINDOWS) -> str:
    response = client.post(
        reverse("profiles:create"), {"platform": platform, "profile_type": "pkcsImportedCertificate"}
    )
    assert response.status_code == 302
    return response["Location"].rsplit("/", 2)[0] + "/"


def post(client: Client, base: str, step: str, data: dict[str, Any], action: str = "next"):
    return client.post(f"{base}{step}/", {**data, "action": action})


def test_a_windows_profile_is_created_through_every_step(manager_client):
    sales = f.group("Sales")
    kiosks = f.group("Kiosks", Group.Kind.DEVICE)
    f.device("PC", f.user("alice@contoso.example", sales))
    base = start(manager_client)
    assert post(manager_client, base, "basics", {"name": "Encryption (Windows)"})["Location"].endswith(
        "settings/"
    )
    post(
        manager_client,
        base,
        "settings",
        {"intended_purpose": "smimeEncryption", "key_storage_provider": "useSoftwareKsp"},
    )
    post(manager_client, base, "scope", {})
    post(manager_client, base, "assignments", {"include_groups": [sales.pk], "exclude_groups": [kiosks.pk]})
    rules = {
        "rules-TOTAL_FORMS": "1",
        "rules-INITIAL_FORMS": "0",
        "rules-0-rule_type": "include",
        "rules-0-os_property": "osVersion",
        "rules-0-min_version": "10.0.19045.0",
        "rules-0-max_version": "10.0.26100.0",
    }
    assert post(manager_client, base, "rules", rules)["Location"].endswith("review/")
    review = manager_client.get(f"{base}review/")
    assert review.status_code == 200
    assert b"Targeting preview" in review.content
    assert b"exclusions are device groups" in review.content  # the lint shows before saving
    response = post(manager_client, base, "review", {}, action="create")
    profile = Profile.objects.get()
    assert response["Location"] == reverse("profiles:detail", args=[profile.code])
    assert profile.key_storage_provider == "useSoftwareKsp"
    assert [str(a) for a in profile.assignments.all()] == ["Excluded: Kiosks", "Included: Sales"]
    assert profile.applicability_rules.get().max_version == "10.0.26100.0"
    assert [t.name for t in profile.scope_tags.all()] == ["Default"]
    event = AuditEvent.objects.get(activity="Create PKCS imported certificate profile")
    assert event.category == "Device configuration"


def test_each_step_is_validated_on_the_server(manager_client):
    f.profile("Taken")
    base = start(manager_client)
    response = post(manager_client, base, "basics", {"name": ""})
    assert response.status_code == 400
    assert b"This field is required" in response.content
    response = post(manager_client, base, "basics", {"name": "taken"})
    assert b"already exists" in response.content
    post(manager_client, base, "basics", {"name": "Fresh"})
    response = post(manager_client, base, "settings", {"intended_purpose": "vpn", "key_storage_provider": ""})
    assert response.status_code == 400
    assert b"Select a valid choice" in response.content


@pytest.mark.parametrize(
    ("low", "high", "message"),
    [
        ("10.0.19045.0", "", b"Both the minimum and the maximum version are required"),
        ("10.0.x", "10.0.2", b"Enter a dotted version"),
        ("10.0.20", "10.0.9", b"must not be below the minimum"),
    ],
)
def test_version_rules_need_both_ends_in_order(manager_client, low, high, message):
    base = start(manager_client)
    post(manager_client, base, "basics", {"name": "P"})
    post(
        manager_client,
        base,
        "settings",
        {"intended_purpose": "unassigned", "key_storage_provider": "useSoftwareKsp"},
    )
    post(manager_client, base, "scope", {})
    post(manager_client, base, "assignments", {"all_users": "on"})
    data = {
        "rules-TOTAL_FORMS": "1",
        "rules-INITIAL_FORMS": "0",
        "rules-0-rule_type": "include",
        "rules-0-os_property": "osVersion",
        "rules-0-min_version": low,
        "rules-0-max_version": high,
    }
    response = post(manager_client, base, "rules", data)
    assert response.status_code == 400
    assert message in response.content


def test_back_keeps_what_was_entered_even_when_invalid(manager_client):
    base = start(manager_client)
    post(manager_client, base, "basics", {"name": "Kept name", "description": "kept description"})
    response = post(manager_client, base, "settings", {"intended_purpose": "smimeSigning"}, action="back")
    assert response["Location"].endswith("basics/")
    page = manager_client.get(f"{base}basics/")
    assert b'value="Kept name"' in page.content
    settings_page = manager_client.get(f"{base}settings/")
    assert b'value="smimeSigning" id="id_intended_purpose_2" required checked' in settings_page.content


def test_later_steps_wait_for_earlier_ones(manager_client):
    base = start(manager_client)
    response = manager_client.get(f"{base}review/")
    assert response["Location"].endswith("basics/")


def test_htmx_gets_just_the_next_step(manager_client):
    base = start(manager_client)
    response = manager_client.post(
        f"{base}basics/", {"name": "Swap", "action": "next"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b'data-step="settings"' in response.content


def test_android_fully_managed_asks_for_certificate_access(manager_client):
    base = start(manager_client, Platform.ANDROID_FULLY_MANAGED)
    post(manager_client, base, "basics", {"name": "Android"})
    data = {
        "intended_purpose": "smimeSigning",
        "certificate_access": "specificApps",
        "silent_access_packages": "",
    }
    assert b"List at least one app" in post(manager_client, base, "settings", data).content
    data["silent_access_packages"] = "not a package"
    assert b"Not an Android package name" in post(manager_client, base, "settings", data).content
    data["silent_access_packages"] = "com.microsoft.office.outlook"
    assert post(manager_client, base, "settings", data)["Location"].endswith("scope/")


def test_applicability_rules_are_a_windows_only_step(manager_client):
    base = start(manager_client, Platform.IOS)
    assert manager_client.get(f"{base}rules/").status_code == 404

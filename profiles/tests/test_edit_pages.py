"""Every Properties section opens for an admin who may change it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from directory.models import Platform
from profiles.tests import factories as f


@pytest.mark.parametrize("section", ["basics", "scope", "assignments", "rules"])
def test_each_windows_section_opens(make_admin, client: Client, section):
    client.force_login(make_admin("policy_and_profile_manager"))
    p = f.profile(all_users=True, rules=[f.version_rule("include", "10.0.1", "10.0.2")])
    assert client.get(reverse("profiles:edit", args=[p.code, section])).status_code == 200


def test_certificate_access_stays_editable_on_android_fully_managed(make_admin, client: Client):
    client.force_login(make_admin("policy_and_profile_manager"))
    p = f.profile(platform=Platform.ANDROID_FULLY_MANAGED, certificate_access="userApproval")
    url = reverse("profiles:edit", args=[p.code, "settings"])
    data = {"certificate_access": "specificApps", "silent_access_packages": "com.microsoft.office.outlook"}
    assert client.post(url, data).status_code == 302
    p.refresh_from_db()
    assert p.silent_access_packages == ["com.microsoft.office.outlook"]
    assert p.intended_purpose == "smimeEncryption"


def test_rules_can_be_replaced_from_properties(make_admin, client: Client):
    client.force_login(make_admin("policy_and_profile_manager"))
    p = f.profile(all_users=True)
    data = {
        "rules-TOTAL_FORMS": "1",
        "rules-INITIAL_FORMS": "0",
        "rules-0-rule_type": "exclude",
        "rules-0-os_property": "osEdition",
        "rules-0-editions": ["windows10Home"],
    }
    assert client.post(reverse("profiles:edit", args=[p.code, "rules"]), data).status_code == 302
    assert p.applicability_rules.get().describe() == "Don't assign profile if OS edition is Home"
    assert client.get(reverse("profiles:duplicate", args=[p.code])).status_code == 200

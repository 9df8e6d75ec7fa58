"""Who may see and change profiles, and the audit rows each change writes."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from directory.models import Group
from portal.models import AuditEvent
from profiles.models import Profile
from profiles.tests import factories as f


@pytest.fixture
def tagged_profile(make_tag) -> Profile:
    p = f.profile("Paris S/MIME", all_users=True)
    p.scope_tags.set([make_tag("Paris")])
    return p


def test_a_read_only_operator_sees_profiles_but_cannot_change_them(
    make_admin, client: Client, tagged_profile
):
    client.force_login(make_admin("read_only_operator"))
    code = tagged_profile.code
    assert b"Paris S/MIME" in client.get(reverse("profiles:list")).content
    assert client.get(reverse("profiles:detail", args=[code])).status_code == 200
    assert client.get(reverse("profiles:properties", args=[code])).status_code == 200
    assert client.get(reverse("profiles:report", args=[code])).status_code == 200
    assert client.get(reverse("profiles:create")).status_code == 403
    assert client.post(reverse("profiles:edit", args=[code, "basics"]), {"name": "x"}).status_code == 403
    assert client.post(reverse("profiles:edit", args=[code, "assignments"]), {}).status_code == 403
    assert client.post(reverse("profiles:delete", args=[code])).status_code == 403
    assert client.post(reverse("profiles:duplicate", args=[code]), {"name": "copy"}).status_code == 403
    assert Profile.objects.count() == 1
    assert not AuditEvent.objects.filter(category="Device configuration").exists()


def test_an_admin_scoped_to_other_tags_gets_404(make_admin, make_tag, client: Client, tagged_profile):
    client.force_login(make_admin("policy_and_profile_manager", tags=[make_tag("Berlin")]))
    assert b"Paris S/MIME" not in client.get(reverse("profiles:list")).content
    assert client.get(reverse("profiles:detail", args=[tagged_profile.code])).status_code == 404
    assert client.post(reverse("profiles:delete", args=[tagged_profile.code])).status_code == 404


def test_the_list_filters_by_platform_and_assignment(make_admin, client: Client):
    client.force_login(make_admin("read_only_operator"))
    f.profile("Assigned", all_users=True)
    f.profile("Idle mac", platform="macOS")
    body = client.get(reverse("profiles:list"), {"assigned": "no"}).content
    assert b"Idle mac" in body and b"Assigned</a>" not in body
    assert client.get(reverse("profiles:list"), {"platform": "bogus"}).status_code == 400


@pytest.fixture
def manager(make_admin, client: Client) -> Client:
    client.force_login(make_admin("policy_and_profile_manager"))
    return client


def test_editing_basics_and_assignments_is_audited(manager: Client, tagged_profile):
    sales = f.group("Sales")
    code = tagged_profile.code
    response = manager.post(reverse("profiles:edit", args=[code, "basics"]), {"name": "Paris encryption"})
    assert response.status_code == 302
    manager.post(reverse("profiles:edit", args=[code, "assignments"]), {"include_groups": [sales.pk]})
    events = {e.activity: e for e in AuditEvent.objects.filter(category="Device configuration")}
    basics = events["Update profile basics"].resources[0]["changes"]
    assert {"field": "name", "old": "Paris S/MIME", "new": "Paris encryption"} in basics
    assignments = events["Update profile assignments"].resources[0]["changes"]
    assert {"field": "all_users", "old": True, "new": False} in assignments


def test_intended_purpose_and_ksp_cannot_be_edited(manager: Client, tagged_profile):
    assert manager.get(reverse("profiles:edit", args=[tagged_profile.code, "settings"])).status_code == 404


def test_delete_asks_first_and_is_audited(manager: Client, tagged_profile):
    url = reverse("profiles:delete", args=[tagged_profile.code])
    assert b"cannot be undone" in manager.get(url).content
    assert manager.post(url)["Location"] == reverse("profiles:list")
    assert not Profile.objects.exists()
    assert (
        AuditEvent.objects.get(category="Device configuration").activity
        == "Delete PKCS imported certificate profile"
    )


def test_duplicate_copies_settings_tags_assignments_and_rules(manager: Client, make_tag):
    kiosks = f.group("Kiosks", Group.Kind.DEVICE)
    p = f.profile(
        "Original", all_users=True, exclude=[kiosks], rules=[f.edition_rule("exclude", "windows10Home")]
    )
    p.scope_tags.set([make_tag("Paris")])
    response = manager.post(reverse("profiles:duplicate", args=[p.code]), {"name": "Original - Copy"})
    assert response.status_code == 302
    copy = Profile.objects.get(name="Original - Copy")
    assert copy.all_users and copy.key_storage_provider == p.key_storage_provider
    assert [t.name for t in copy.scope_tags.all()] == ["Paris"]
    assert copy.assignments.get().group == kiosks
    assert copy.applicability_rules.get().editions == ["windows10Home"]
    assert AuditEvent.objects.filter(activity="Duplicate PKCS imported certificate profile").exists()


def test_scope_tag_edits_keep_tags_the_admin_does_not_hold(make_admin, make_tag, client: Client):
    paris, berlin = make_tag("Paris"), make_tag("Berlin")
    p = f.profile("Shared")
    p.scope_tags.set([paris, berlin])
    client.force_login(make_admin("policy_and_profile_manager", tags=[paris]))
    response = client.post(reverse("profiles:edit", args=[p.code, "scope"]), {"scope_tags": []})
    assert response.status_code == 302
    assert [t.name for t in p.scope_tags.all()] == ["Berlin"]


def test_the_report_filters_and_exports_csv(manager: Client):
    alice = f.user("alice@contoso.example")
    f.device("PC-ALICE", alice)
    f.device("IPHONE-ALICE", alice, platform="iOS", version="17")
    p = f.profile(all_users=True)
    page = manager.get(reverse("profiles:report", args=[p.code]), {"status": "notApplicable"})
    assert b"IPHONE-ALICE" in page.content and b"PC-ALICE" not in page.content
    response = manager.get(reverse("profiles:report_csv", args=[p.code]))
    csv = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert "PC-ALICE,alice@contoso.example" in csv
    assert "Platform is not Windows 10 and later" in csv

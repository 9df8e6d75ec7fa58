"""The demo profiles: created through the services, audited, and only once."""

from __future__ import annotations

import pytest

from devtools.profiles import DEMO_PROFILES, OUTLOOK, seed_demo_profiles
from devtools.tenant import seed
from directory.models import Platform
from portal.models import AuditEvent, Role, ScopeTag
from profiles.lint import lint
from profiles.models import CertificateAccess, IntendedPurpose, KeyStorageProvider, Profile
from profiles.reports import evaluate


@pytest.fixture
def demo_tenant(built_in_roles: dict[str, Role]) -> None:
    seed()


def test_seeding_twice_creates_the_demo_profiles_once(demo_tenant: None):
    created = seed_demo_profiles()
    assert len(created) == len(DEMO_PROFILES) == 4
    assert seed_demo_profiles() == []
    assert Profile.objects.count() == 4
    events = AuditEvent.objects.filter(activity="Create PKCS imported certificate profile")
    assert events.count() == 4
    assert {(e.actor_type, e.actor_name) for e in events} == {(AuditEvent.ActorType.SYSTEM, "seed_demo")}


def test_seeding_keeps_an_admins_edits_to_a_demo_profile(demo_tenant: None):
    seed_demo_profiles()
    ios = Profile.objects.get(platform=Platform.IOS)
    ios.description = "Edited"
    ios.save()
    ios.assignments.all().delete()
    seed_demo_profiles()
    ios.refresh_from_db()
    assert ios.description == "Edited" and not ios.assignments.exists()


def test_the_demo_profiles_have_realistic_settings_and_targeting(demo_tenant: None):
    seed_demo_profiles()
    windows = Profile.objects.get(name="S/MIME encryption \u2013 Windows")
    assert windows.intended_purpose == IntendedPurpose.SMIME_ENCRYPTION
    assert windows.key_storage_provider == KeyStorageProvider.TPM_OTHERWISE_SOFTWARE
    assert [str(a) for a in windows.assignments.all()] == [
        "Excluded: Pilot - Intune Certificates",
        "Included: All Company",
    ]
    assert [r.os_property for r in windows.applicability_rules.all()] == ["osVersion", "osEdition"]
    android = Profile.objects.get(platform=Platform.ANDROID_FULLY_MANAGED)
    assert android.certificate_access == CertificateAccess.SPECIFIC_APPS
    assert android.silent_access_packages == [OUTLOOK]
    ios = Profile.objects.get(platform=Platform.IOS)
    assert ios.intended_purpose == IntendedPurpose.SMIME_SIGNING
    # Every demo profile reaches someone, and none conflicts with another.
    for profile in Profile.objects.all():
        summary = evaluate(profile).summary()
        assert summary.devices["pending"] > 0, profile.name
        assert summary.devices["conflict"] == 0, profile.name
        assert "userIncludeDeviceExclude" not in {x.code for x in lint(evaluate(profile), summary=summary)}


def test_the_demo_profiles_are_tagged_default_and_one_also_europe(demo_tenant: None):
    seed_demo_profiles()
    tags = {p.name: sorted(t.name for t in p.scope_tags.all()) for p in Profile.objects.all()}
    default = ScopeTag.default().name
    assert all(default in names for names in tags.values())
    assert [name for name, names in tags.items() if "Europe" in names] == [
        "S/MIME encryption \u2013 Android Enterprise fully managed"
    ]


def test_without_the_europe_tag_the_profiles_get_default_only(db: None):
    assert not ScopeTag.objects.filter(name="Europe").exists()
    seed_demo_profiles()
    assert {t.name for p in Profile.objects.all() for t in p.scope_tags.all()} == {ScopeTag.default().name}

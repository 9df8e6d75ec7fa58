"""Targeting warnings, and what one directory user gets."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from directory.models import DirectoryUser, Group, Platform
from profiles.lint import certificate_holders, lint
from profiles.models import Profile
from profiles.reports import evaluate, profiles_for_user, reaching_profiles_for_user
from profiles.tests import factories as f


def codes(found):
    return [item.code for item in found]


def test_mixed_group_types_and_cross_type_exclusions_are_flagged(db):
    sales, kiosks = f.group("Sales"), f.group("Kiosks", Group.Kind.DEVICE)
    f.user("alice@contoso.example", sales)
    f.device("K1", None, kiosks)
    p = f.profile(include=[sales], exclude=[kiosks])
    assert "userIncludeDeviceExclude" in codes(lint(evaluate(p), holders=lambda purpose: None))
    q = f.profile("Both kinds", include=[sales, kiosks])
    assert "mixedGroupTypes" in codes(lint(evaluate(q), holders=lambda purpose: None))


def test_empty_groups_are_flagged(db):
    empty = f.group("Nobody")
    found = lint(evaluate(f.profile(include=[empty])), holders=lambda purpose: None)
    assert [item.message for item in found if item.code == "emptyGroup"] == [
        "The group Nobody has no members."
    ]


def test_targeted_users_without_a_certificate_of_the_purpose_are_flagged(db):
    alice, bob = f.user("alice@contoso.example"), f.user("bob@contoso.example")
    f.device("PC-A", alice)
    f.device("PC-B", bob)
    p = f.profile(all_users=True)
    seen = []

    def holders(purpose):
        seen.append(purpose)
        return DirectoryUser.objects.filter(pk=alice.pk)

    found = {item.code: item.message for item in lint(evaluate(p), holders=holders)}
    assert seen == ["smimeEncryption"]
    assert found["usersWithoutCertificate"].startswith("1 targeted user has no current certificate")
    assert "bob@contoso.example" in found["usersWithoutCertificate"]


def test_the_certificate_check_is_skipped_while_certificates_are_not_tracked(db, monkeypatch):
    def missing(*args, **kwargs):
        raise LookupError

    monkeypatch.setattr("django.apps.apps.get_model", missing)
    assert certificate_holders("smimeEncryption") is None
    f.device("PC", f.user("alice@contoso.example"))
    assert "usersWithoutCertificate" not in codes(lint(evaluate(f.profile(all_users=True))))


def test_devices_of_other_platforms_are_flagged(db):
    f.device("IPHONE", f.user("alice@contoso.example"), platform=Platform.IOS, version="17")
    found = lint(evaluate(f.profile(all_users=True)), holders=lambda purpose: None)
    messages = [i.message for i in found if i.code == "otherPlatforms"]
    assert messages == ["1 targeted device is not Windows 10 and later and will show as Not applicable."]


def test_profiles_for_user_lists_reaching_profiles_first_with_reasons(db):
    contractors = f.group("Contractors")
    alice = f.user("alice@contoso.example", contractors)
    f.device("PC-ALICE", alice)
    f.profile("Excluding", all_users=True, exclude=[contractors])
    f.profile("Reaching", all_users=True)
    f.profile("Mac only", platform=Platform.MACOS, all_users=True)
    f.profile("Unassigned", platform=Platform.IOS)
    results = profiles_for_user(alice)
    assert [r.profile.name for r in results] == ["Reaching", "Excluding", "Mac only", "Unassigned"]
    excluded = results[1].results[0]
    assert excluded.state_label == "Excluded"
    assert excluded.reason == "Excluded by user group Contractors"
    assert results[2].results[0].reason == "Platform is not macOS"


def test_the_user_pages_profiles_are_the_reaching_ones_with_their_reasons_and_a_count_of_the_rest(db):
    contractors = f.group("Contractors")
    alice = f.user("alice@contoso.example", contractors)
    f.device("PC-ALICE", alice)
    f.profile("Excluding", all_users=True, exclude=[contractors])
    f.profile("Reaching", all_users=True)
    f.profile("Mac only", platform=Platform.MACOS, all_users=True)
    reaching, not_reaching = reaching_profiles_for_user(alice, Profile.objects.all())
    assert [r.profile.name for r in reaching] == ["Reaching"]
    assert reaching[0].profile.get_platform_display() == "Windows 10 and later"
    assert [(r.device.name if r.device else None, r.reason) for r in reaching[0].results] == [
        ("PC-ALICE", "Waiting for the device to check in")
    ]
    assert not_reaching == 2


def test_the_user_page_fragment_renders_for_helpdesk(helpdesk, client: Client):
    alice = f.user("alice@contoso.example")
    f.device("PC-ALICE", alice)
    f.profile("Reaching", all_users=True)
    client.force_login(helpdesk)
    url = reverse("profiles:user_profiles", args=[alice.object_id])
    assert b"<html" not in client.get(url, headers={"HX-Request": "true"}).content
    page = client.get(url)
    assert page.status_code == 200
    assert b"PC-ALICE" in page.content and b"Waiting for the device to check in" in page.content


def test_what_one_user_gets_agrees_with_the_whole_tenant_evaluation(db):
    from django.utils import timezone

    from delivery.models import DeliveryState
    from directory.models import WindowsEdition
    from profiles.models import KeyStorageProvider

    staff, contractors = f.group("Staff"), f.group("Contractors")
    pcs, kiosks = f.group("PCs", Group.Kind.DEVICE), f.group("Kiosks", Group.Kind.DEVICE)
    alice = f.user("alice@contoso.example", staff)
    alice_pc = f.device("PC-ALICE", alice, pcs)
    f.device("HOME-ALICE", alice, edition=WindowsEdition.HOME)
    f.device("IPHONE-ALICE", alice, platform=Platform.IOS, version="17.2")
    bob = f.user("bob@contoso.example", staff, contractors)
    f.device("PC-BOB", bob, kiosks)
    f.device("PC-BOB-2", bob, pcs)
    f.user("carol@contoso.example", staff)  # no device
    f.user("dan@contoso.example", contractors)  # no device, excluded
    gone = f.user("gone@contoso.example", staff)
    f.device("PC-GONE", gone, pcs)
    gone.removed_at = timezone.now()
    gone.save(update_fields=["removed_at"])
    tpm = f.profile(
        "TPM", include=[staff], exclude=[contractors], rules=[f.edition_rule("exclude", WindowsEdition.HOME)]
    )
    f.profile("Software", include=[pcs], exclude=[kiosks], key_storage_provider=KeyStorageProvider.SOFTWARE)
    f.profile("Same settings", all_users=True, exclude=[kiosks])
    f.profile("Signing", all_devices=True, intended_purpose="smimeSigning", exclude=[contractors])
    f.profile("iOS", platform=Platform.IOS, all_users=True, exclude=[contractors])
    f.profile("Unassigned", platform=Platform.MACOS)
    DeliveryState.objects.create(profile=tpm, device=alice_pc, status="error")
    expected = {}
    for profile in Profile.objects.all():
        for pair in evaluate(profile).pairs():
            expected[(profile.pk, pair.user_id, pair.device_id)] = pair.state
    for person in DirectoryUser.objects.all():
        for result in profiles_for_user(person):
            for r in result.results:
                key = (result.profile.pk, person.pk, r.device.pk if r.device else None)
                assert r.state == expected.get(key, "notTargeted"), (
                    result.profile.name,
                    person.upn,
                    r.device,
                )

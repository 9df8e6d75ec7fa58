"""The targeting rules, as a truth table over one user and one device."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.models import DeliveryState
from directory.models import Group, Platform, WindowsEdition
from profiles.models import DeliveryStatus, KeyStorageProvider
from profiles.reports import evaluate
from profiles.targeting import EXCLUDED, NOT_TARGETED, flags_for, outcome
from profiles.tests import factories as f

PENDING, NA = "pending", "notApplicable"
UI, UX, DI, DX = "user-include", "user-exclude", "device-include", "device-exclude"


@pytest.fixture
def groups(db: None) -> dict[str, Group]:
    return {
        UI: f.group("Sales"),
        UX: f.group("Contractors"),
        DI: f.group("Corporate PCs", Group.Kind.DEVICE),
        DX: f.group("Kiosks", Group.Kind.DEVICE),
    }


def state_of(
    groups: dict[str, Group], *, member_of: set[str], include: set[str], exclude: set[str], **kw: Any
):
    alice = f.user("alice@contoso.example", *(groups[g] for g in member_of & {UI, UX}))
    pc = f.device("PC-1", alice, *(groups[g] for g in member_of & {DI, DX}))
    p = f.profile(include=[groups[g] for g in include], exclude=[groups[g] for g in exclude], **kw)
    pairs = {pair.device_id: pair for pair in evaluate(p).pairs()}
    return pairs[pc.pk].state, pairs[pc.pk].reason


TRUTH_TABLE = [
    # (member of, included, excluded, virtual groups, expected state, reason)
    (set(), set(), set(), {}, NOT_TARGETED, "notTargeted"),
    ({UI}, {UI}, set(), {}, PENDING, "pending"),
    (set(), {UI}, set(), {}, NOT_TARGETED, "notTargeted"),
    ({UI, UX}, {UI}, {UX}, {}, EXCLUDED, "excludedByUserGroup"),
    # A device-group exclusion does not remove a user targeted through a user group.
    ({UI, DX}, {UI}, {DX}, {}, PENDING, "pending"),
    ({DI}, {DI}, set(), {}, PENDING, "pending"),
    ({DI, DX}, {DI}, {DX}, {}, EXCLUDED, "excludedByDeviceGroup"),
    # A user-group exclusion does not remove a device targeted through a device group.
    ({DI, UX}, {DI}, {UX}, {}, PENDING, "pending"),
    # Excluded as a user, but the device is still targeted on its own.
    ({UI, UX, DI}, {UI, DI}, {UX}, {}, PENDING, "pending"),
    ({UI, UX, DI, DX}, {UI, DI}, {UX, DX}, {}, EXCLUDED, "excludedByUserGroup"),
    (set(), set(), set(), {"all_users": True}, PENDING, "pending"),
    ({UX}, set(), {UX}, {"all_users": True}, EXCLUDED, "excludedByUserGroup"),
    # "All users" minus a device group still reaches every user.
    ({DX}, set(), {DX}, {"all_users": True}, PENDING, "pending"),
    (set(), set(), set(), {"all_devices": True}, PENDING, "pending"),
    ({DX}, set(), {DX}, {"all_devices": True}, EXCLUDED, "excludedByDeviceGroup"),
    ({UX}, set(), {UX}, {"all_devices": True}, PENDING, "pending"),
]


@pytest.mark.parametrize(("member_of", "include", "exclude", "virtual", "state", "reason"), TRUTH_TABLE)
def test_includes_and_excludes_follow_intunes_rules(
    groups, member_of, include, exclude, virtual, state, reason
):
    assert state_of(groups, member_of=member_of, include=include, exclude=exclude, **virtual) == (
        state,
        reason,
    )


def test_a_device_of_another_platform_is_not_applicable(db):
    alice = f.user("alice@contoso.example")
    iphone = f.device("iPhone", alice, platform=Platform.IOS, version="17.2")
    pairs = {p.device_id: p for p in evaluate(f.profile(all_users=True)).pairs()}
    assert (pairs[iphone.pk].state, pairs[iphone.pk].reason) == (NA, "platform")


def test_a_targeted_device_without_a_primary_user_is_not_applicable(db):
    kiosk = f.device("KIOSK", None)
    pairs = {p.device_id: p for p in evaluate(f.profile(all_devices=True)).pairs()}
    assert (pairs[kiosk.pk].state, pairs[kiosk.pk].reason) == (NA, "noPrimaryUser")


def test_a_targeted_user_without_a_device_is_pending(db):
    bob = f.user("bob@contoso.example")
    pairs = {p.user_id: p for p in evaluate(f.profile(all_users=True)).pairs()}
    assert (pairs[bob.pk].device_id, pairs[bob.pk].state, pairs[bob.pk].reason) == (None, PENDING, "noDevice")


def test_removed_devices_and_users_are_left_out(db):
    from django.utils import timezone

    gone = f.user("gone@contoso.example")
    gone.removed_at = timezone.now()
    gone.save()
    old = f.device("OLD", f.user("carol@contoso.example"))
    old.removed_at = timezone.now()
    old.save()
    pairs = list(evaluate(f.profile(all_users=True)).pairs())
    assert old.pk not in {p.device_id for p in pairs}
    assert gone.pk not in {p.user_id for p in pairs}


def _rule_state(
    rules: list[dict[str, Any]], *, edition: str = WindowsEdition.ENTERPRISE, version: str = "10.0.19045.1"
):
    alice = f.user(f"u{DeliveryState.objects.count()}-{version}-{edition}@contoso.example")
    pc = f.device("PC", alice, edition=edition, version=version)
    p = f.profile(name=f"P {pc.pk}", all_users=True, rules=rules)
    pairs = {pair.device_id: pair for pair in evaluate(p).pairs()}
    return pairs[pc.pk].state


@pytest.mark.parametrize(
    ("rule_type", "editions", "device_edition", "state"),
    [
        ("include", [WindowsEdition.ENTERPRISE], WindowsEdition.ENTERPRISE, PENDING),
        ("include", [WindowsEdition.ENTERPRISE], WindowsEdition.HOME, NA),
        ("include", [WindowsEdition.ENTERPRISE, WindowsEdition.EDUCATION], WindowsEdition.EDUCATION, PENDING),
        ("exclude", [WindowsEdition.HOME], WindowsEdition.HOME, NA),
        ("exclude", [WindowsEdition.HOME], WindowsEdition.PROFESSIONAL, PENDING),
    ],
)
def test_os_edition_rules_assign_or_hold_back(db, rule_type, editions, device_edition, state):
    assert _rule_state([f.edition_rule(rule_type, *editions)], edition=device_edition) == state


@pytest.mark.parametrize(
    ("rule_type", "low", "high", "version", "state"),
    [
        ("include", "10.0.19045.0", "10.0.22631.9999", "10.0.19045.0", PENDING),  # the minimum itself
        ("include", "10.0.19045.0", "10.0.22631.9999", "10.0.22631.9999", PENDING),  # the maximum itself
        ("include", "10.0.19045.0", "10.0.22631.9999", "10.0.19044.9999", NA),  # just below
        ("include", "10.0.19045.0", "10.0.22631.9999", "10.0.22632.0", NA),  # just above
        ("include", "10.0.10", "10.0.20", "10.0.9", NA),  # numeric, not text: 9 < 10
        ("include", "10.0.10", "10.0.20", "10.0.10", PENDING),
        ("include", "10.0.10", "10.0.20", "10.0.100", NA),
        ("include", "10.0", "10.0", "10.0.0.0", PENDING),  # missing parts count as 0
        ("exclude", "10.0.19045.0", "10.0.22631.9999", "10.0.19045.0", NA),
        ("exclude", "10.0.19045.0", "10.0.22631.9999", "10.0.26100.1", PENDING),
        ("include", "10.0.19045.0", "10.0.22631.9999", "", NA),  # unknown version never matches
    ],
)
def test_os_version_ranges_include_both_ends_and_compare_numerically(
    db, rule_type, low, high, version, state
):
    assert _rule_state([f.version_rule(rule_type, low, high)], version=version) == state


def test_every_rule_must_hold(db):
    rules = [
        f.edition_rule("include", WindowsEdition.ENTERPRISE),
        f.version_rule("include", "10.0.22000.0", "10.0.29999.0"),
    ]
    assert _rule_state(rules, version="10.0.19045.1") == NA
    assert _rule_state(rules, version="10.0.22631.1") == PENDING


def test_applicability_rules_are_ignored_on_other_platforms(db):
    alice = f.user("alice@contoso.example")
    mac = f.device("MAC", alice, platform=Platform.MACOS, version="14.2")
    p = f.profile(
        platform=Platform.MACOS, all_users=True, rules=[f.edition_rule("include", WindowsEdition.HOME)]
    )
    assert {pair.device_id: pair.state for pair in evaluate(p).pairs()}[mac.pk] == PENDING


def test_the_summary_counts_devices_and_users_by_their_worst_state(db):
    alice, bob = f.user("alice@contoso.example"), f.user("bob@contoso.example")
    f.user("carol@contoso.example")  # no device: pending
    f.device("A-PC", alice)
    f.device("A-IPHONE", alice, platform=Platform.IOS, version="17")
    bob_pc = f.device("B-PC", bob)
    p = f.profile(all_users=True)
    DeliveryState.objects.create(
        profile=p, device=bob_pc, user=bob, certificate_thumbprint="ab" * 20, status="error"
    )
    summary = evaluate(p).summary()
    assert summary.devices["pending"] == 1
    assert summary.devices["notApplicable"] == 1
    assert summary.devices["error"] == 1
    assert summary.users == {"succeeded": 0, "error": 1, "conflict": 0, "pending": 2, "notApplicable": 0}


def test_summary_and_pairs_agree(db, groups):
    people = [
        f.user(f"user{i}@contoso.example", *([groups[UI]] if i % 2 else [groups[UX]])) for i in range(8)
    ]
    for i, person in enumerate(people):
        f.device(
            f"PC{i}",
            person,
            *([groups[DX]] if i % 3 == 0 else []),
            edition=[WindowsEdition.HOME, WindowsEdition.ENTERPRISE][i % 2],
        )
    p = f.profile(
        include=[groups[UI]],
        exclude=[groups[UX], groups[DX]],
        rules=[f.edition_rule("exclude", WindowsEdition.HOME)],
    )
    evaluation = evaluate(p)
    counted: dict[str, int] = {}
    for pair in evaluation.pairs():
        if pair.device_id is not None:
            counted[pair.state] = counted.get(pair.state, 0) + 1
    summary = evaluation.summary()
    assert {k: v for k, v in summary.devices.items() if v} == counted


def test_filtering_by_state_in_sql_matches_the_python_rules():
    for state in (PENDING, NA, EXCLUDED, NOT_TARGETED, "conflict"):
        assert all(outcome(v).state == state for v in flags_for([state]))


def test_delivery_reports_set_succeeded_error_and_conflict(db):
    alice = f.user("alice@contoso.example")
    pcs = [f.device(f"PC{i}", alice) for i in range(4)]
    p = f.profile(all_users=True)
    for pc, status in zip(pcs, ["succeeded", "error", "conflict"], strict=False):
        DeliveryState.objects.create(profile=p, device=pc, status=status)
    states = {pair.device_id: pair.state for pair in evaluate(p).pairs()}
    assert [states[pc.pk] for pc in pcs] == ["succeeded", "error", "conflict", "pending"]


# --- Conflicts ---------------------------------------------------------------


def test_two_profiles_of_one_purpose_and_platform_with_other_settings_conflict(db):
    pc = f.device("PC", f.user("alice@contoso.example"))
    a = f.profile("TPM", all_users=True)
    b = f.profile("Software", all_devices=True, key_storage_provider=KeyStorageProvider.SOFTWARE)
    for p in (a, b):
        assert {x.device_id: x.state for x in evaluate(p).pairs()}[pc.pk] == DeliveryStatus.CONFLICT


def test_profiles_whose_settings_agree_do_not_conflict(db):
    pc = f.device("PC", f.user("alice@contoso.example"))
    a = f.profile("One", all_users=True)
    f.profile("Two", all_users=True)
    assert {x.device_id: x.state for x in evaluate(a).pairs()}[pc.pk] == PENDING


def test_profiles_of_another_purpose_or_not_reaching_the_device_do_not_conflict(db, groups):
    pc = f.device("PC", f.user("alice@contoso.example"))
    a = f.profile("Encryption", all_users=True)
    f.profile(
        "Signing",
        all_users=True,
        intended_purpose="smimeSigning",
        key_storage_provider=KeyStorageProvider.SOFTWARE,
    )
    f.profile("Elsewhere", include=[groups[UI]], key_storage_provider=KeyStorageProvider.SOFTWARE)
    f.profile(
        "Not applicable",
        all_users=True,
        key_storage_provider=KeyStorageProvider.SOFTWARE,
        rules=[f.edition_rule("include", WindowsEdition.HOME)],
    )
    assert {x.device_id: x.state for x in evaluate(a).pairs()}[pc.pk] == PENDING

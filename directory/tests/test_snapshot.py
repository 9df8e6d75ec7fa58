from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from directory.models import Device, DirectoryUser, Group, GroupDeviceMember, GroupUserMember, Platform
from directory.snapshot import EntraGroup, EntraUser, ManagedDevice, Snapshot, apply_entra_snapshot

pytestmark = pytest.mark.django_db


def _tenant(size: int, *, renamed: bool = False) -> Snapshot:
    """``size`` users, devices and groups; ``renamed`` changes every one of them and every membership."""
    ids = [uuid.UUID(int=n + 1) for n in range(size)]
    suffix = " (renamed)" if renamed else ""
    users = [
        EntraUser(object_id=i, upn=f"user{n}@contoso.com", display_name=f"User {n}{suffix}")
        for n, i in enumerate(ids)
    ]
    devices = [
        ManagedDevice(
            device_id=i,
            name=f"PC-{n}{suffix}",
            platform=Platform.WINDOWS,
            os_version="10.0.22631.4890",
            primary_user=i,
        )
        for n, i in enumerate(ids)
    ]
    groups = [
        EntraGroup(
            object_id=i,
            display_name=f"Group {n}{suffix}",
            users=frozenset(ids[n + renamed :: 2]),
            devices=frozenset(ids[n + renamed :: 3]),
        )
        for n, i in enumerate(ids)
    ]
    return Snapshot(users=users, groups=groups, devices=devices)


def _queries(snapshot: Snapshot) -> int:
    with CaptureQueriesContext(connection) as captured:
        apply_entra_snapshot(snapshot, now=timezone.now())
    return len(captured)


def test_applying_a_snapshot_takes_as_many_queries_for_thirty_of_everything_as_for_three() -> None:
    counts = []
    for size in (3, 30):
        Device.objects.all().delete()
        Group.objects.all().delete()
        DirectoryUser.objects.all().delete()
        created = _queries(_tenant(size))
        changed = _queries(_tenant(size, renamed=True))
        gone = _queries(Snapshot())
        counts.append((created, changed, gone))
    assert counts[0] == counts[1]


def test_a_snapshot_creates_updates_and_removes_in_place() -> None:
    first = apply_entra_snapshot(_tenant(6), now=timezone.now())
    assert (
        first.counts["users created"]
        == first.counts["devices created"]
        == first.counts["groups created"]
        == 6
    )
    user_pks = set(DirectoryUser.objects.values_list("pk", flat=True))
    members = set(GroupUserMember.objects.values_list("group__object_id", "user__object_id"))
    assert members == {(g.object_id, u) for g in _tenant(6).groups for u in g.users}

    second = apply_entra_snapshot(_tenant(6, renamed=True), now=timezone.now())

    assert second.counts["users updated"] == second.counts["devices updated"] == 6
    assert second.counts["groups updated"] == 6 and second.counts["users created"] == 0
    assert set(DirectoryUser.objects.values_list("pk", flat=True)) == user_pks
    assert set(DirectoryUser.objects.values_list("display_name", flat=True)) == {
        f"User {n} (renamed)" for n in range(6)
    }
    wanted = {(g.object_id, u) for g in _tenant(6, renamed=True).groups for u in g.users}
    assert set(GroupUserMember.objects.values_list("group__object_id", "user__object_id")) == wanted
    devices = {(g.object_id, d) for g in _tenant(6, renamed=True).groups for d in g.devices}
    assert set(GroupDeviceMember.objects.values_list("group__object_id", "device__device_id")) == devices
    assert second.counts["memberships added"] + second.counts["memberships removed"] > 0
    device = Device.objects.get(device_id=uuid.UUID(int=1))
    assert device.primary_user is not None and device.primary_user.object_id == uuid.UUID(int=1)

    third = apply_entra_snapshot(Snapshot(), now=timezone.now())

    assert (
        third.counts["users removed"]
        == third.counts["devices removed"]
        == third.counts["groups removed"]
        == 6
    )
    assert not DirectoryUser.objects.filter(removed_at__isnull=True).exists()
    # A group Entra ID no longer lists keeps its members, as it was when it went.
    assert set(GroupUserMember.objects.values_list("group__object_id", "user__object_id")) == wanted


def test_three_accounts_may_pass_their_upns_round_in_one_snapshot() -> None:
    people = _tenant(3).users
    apply_entra_snapshot(Snapshot(users=people), now=timezone.now())
    rotated = [
        EntraUser(object_id=person.object_id, upn=people[(n + 1) % 3].upn, display_name=person.display_name)
        for n, person in enumerate(people)
    ]

    applied = apply_entra_snapshot(Snapshot(users=rotated), now=timezone.now())

    assert applied.counts["user principal names reassigned"] == 3
    for person in rotated:
        assert DirectoryUser.objects.get(object_id=person.object_id).upn == person.upn

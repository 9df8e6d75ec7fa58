from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from certs.models import Certificate
from devtools.emulator.server import Emulator
from directory.models import Device, DirectoryUser, Group, GroupUserMember
from graph import directory_sync
from graph.client import GraphClient
from graph.models import SyncRun

pytestmark = pytest.mark.django_db


def test_a_first_sync_pages_through_every_user_group_member_and_device(
    emulator: Emulator, portal_graph: GraphClient
) -> None:
    run = directory_sync.run(client=portal_graph)
    assert run.state == SyncRun.State.DONE
    state = emulator.state
    assert DirectoryUser.objects.count() == len(state.users) == run.count("users created")
    assert Group.objects.count() == len(state.groups)
    assert Device.objects.count() == len(state.devices)
    members = sum(len(m) for m in state.members.values())
    assert run.count("memberships added") == members
    guest = DirectoryUser.objects.get(upn__contains="#EXT#", upn__startswith="kari")
    assert guest.groups.filter(display_name="Contractors").exists()
    windows = Group.objects.get(display_name="All Windows Devices")
    assert windows.kind == Group.Kind.DEVICE and windows.devices.count() > 0
    owned = next(d for d in state.devices.values() if d["userId"])
    device = Device.objects.get(device_id=owned["azureADDeviceId"])
    assert str(device.primary_user.object_id) == owned["userId"]  # type: ignore[union-attr]
    assert device.os_version == owned["osVersion"]


def test_a_second_sync_updates_in_place_and_marks_what_graph_no_longer_lists(
    emulator: Emulator, portal_graph: GraphClient
) -> None:
    directory_sync.run(client=portal_graph)
    state = emulator.state
    users = list(state.users.values())
    renamed, leaver = users[0], users[1]
    renamed["displayName"] = "Renamed Person"
    del state.users[leaver["id"]]
    device_id = next(iter(state.devices))
    gone_device = state.devices.pop(device_id)
    group_id = next(g for g, m in state.members.items() if any(x["id"] == renamed["id"] for x in m))
    state.members[group_id] = [m for m in state.members[group_id] if m["id"] != renamed["id"]]
    user_pk_before = DirectoryUser.objects.get(object_id=renamed["id"]).pk

    run = directory_sync.run(client=portal_graph)

    assert (run.count("users created"), run.count("users updated"), run.count("users removed")) == (0, 1, 1)
    assert run.count("devices removed") == 1
    assert run.count("memberships removed") >= 1
    user = DirectoryUser.objects.get(object_id=renamed["id"])
    assert user.pk == user_pk_before and user.display_name == "Renamed Person"
    assert DirectoryUser.objects.get(object_id=leaver["id"]).removed_at is not None
    assert Device.objects.get(device_id=gone_device["azureADDeviceId"]).removed_at is not None
    assert not GroupUserMember.objects.filter(group__object_id=group_id, user=user).exists()


def test_a_user_who_comes_back_is_no_longer_marked_removed(
    emulator: Emulator, portal_graph: GraphClient
) -> None:
    directory_sync.run(client=portal_graph)
    user = next(iter(emulator.state.users.values()))
    del emulator.state.users[user["id"]]
    directory_sync.run(client=portal_graph)
    emulator.state.users[user["id"]] = user
    directory_sync.run(client=portal_graph)
    assert DirectoryUser.objects.get(object_id=user["id"]).removed_at is None


def test_a_new_account_may_reuse_a_leavers_upn_and_the_leaver_keeps_its_certificates(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    directory_sync.run(client=portal_graph)
    leaver = next(iter(emulator.state.users.values()))
    certificate = make_certificate(leaver["userPrincipalName"])
    del emulator.state.users[leaver["id"]]
    newcomer = {**leaver, "id": str(uuid.uuid4()), "displayName": "New Hire"}
    emulator.state.users[newcomer["id"]] = newcomer

    run = directory_sync.run(client=portal_graph)
    assert run.state == SyncRun.State.DONE
    assert run.count("user principal names reassigned") == 1
    new = DirectoryUser.objects.get(upn__iexact=leaver["userPrincipalName"])
    assert (str(new.object_id), new.display_name, new.removed_at) == (newcomer["id"], "New Hire", None)
    old = DirectoryUser.objects.get(object_id=leaver["id"])
    assert old.upn.startswith(leaver["userPrincipalName"] + " (reassigned")
    # Gone from Entra ID but holding a certificate: kept for review, not removed.
    assert old.removed_at is None and old.missing_from_entra_at is not None
    assert old.certificates.get() == certificate


def test_two_accounts_may_swap_their_upns_in_one_sync(emulator: Emulator, portal_graph: GraphClient) -> None:
    directory_sync.run(client=portal_graph)
    a, b = list(emulator.state.users.values())[:2]
    # New records rather than edits: the emulator's directory is shared by the whole run.
    first = {**a, "userPrincipalName": b["userPrincipalName"]}
    second = {**b, "userPrincipalName": a["userPrincipalName"]}
    emulator.state.users[a["id"]], emulator.state.users[b["id"]] = first, second
    assert directory_sync.run(client=portal_graph).state == SyncRun.State.DONE
    for person in (first, second):
        assert DirectoryUser.objects.get(object_id=person["id"]).upn == person["userPrincipalName"]


def _import_csv(text: str) -> None:
    import io

    from directory.imports import import_users_csv
    from portal.audit import Actor

    report = import_users_csv(Actor.system("test"), io.BytesIO(text.encode()))
    assert report.ok, report.errors


def _give_certificate(
    user: DirectoryUser, make_certificate: Callable[..., Certificate], emulator: Emulator
) -> Certificate:
    """A certificate made for the emulator's last user, handed to ``user``."""
    certificate = make_certificate(list(emulator.state.users.values())[-1]["userPrincipalName"])
    certificate.user, certificate.upn = user, user.upn
    certificate.save(update_fields=["user", "upn"])
    return certificate


def test_a_sync_never_removes_users_imported_from_csv(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    directory_sync.run(client=portal_graph)
    _import_csv(
        "userPrincipalName,displayName\n"
        + "".join(f"contractor{i}@contoso.com,Contractor {i}\n" for i in range(35))
    )
    _give_certificate(DirectoryUser.objects.get(upn="contractor0@contoso.com"), make_certificate, emulator)

    run = directory_sync.run(client=portal_graph)
    run = directory_sync.run(client=portal_graph)

    assert run.count("users removed") == 0
    imported = DirectoryUser.objects.filter(upn__startswith="contractor")
    assert imported.count() == 35
    assert set(imported.values_list("source", "removed_at", "missing_from_entra_at")) == {("csv", None, None)}


def test_an_entra_user_who_disappears_holding_certificates_is_flagged_for_review_not_removed(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    from portal.models import AuditEvent

    directory_sync.run(client=portal_graph)
    holder, other = list(emulator.state.users.values())[:2]
    certificate = make_certificate(holder["userPrincipalName"])
    del emulator.state.users[holder["id"]], emulator.state.users[other["id"]]

    run = directory_sync.run(client=portal_graph)

    assert run.count("users removed") == 1
    assert run.count("users gone from Entra ID with certificates (to review)") == 1
    kept = DirectoryUser.objects.get(object_id=holder["id"])
    assert kept.removed_at is None and kept.missing_from_entra_at is not None and not kept.in_entra
    assert DirectoryUser.objects.get(object_id=other["id"]).removed_at is not None
    event = AuditEvent.objects.filter(activity="Sync directory from Microsoft Graph").first()
    assert event is not None
    assert holder["userPrincipalName"] in [r["name"] for r in event.resources]

    # A second sync keeps the first date; once the certificates are gone, the user is removed.
    flagged_at = kept.missing_from_entra_at
    directory_sync.run(client=portal_graph)
    assert DirectoryUser.objects.get(pk=kept.pk).missing_from_entra_at == flagged_at
    certificate.delete()
    directory_sync.run(client=portal_graph)
    assert DirectoryUser.objects.get(pk=kept.pk).removed_at is not None


def test_a_flagged_user_whom_entra_lists_again_is_no_longer_flagged(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    directory_sync.run(client=portal_graph)
    holder = next(iter(emulator.state.users.values()))
    make_certificate(holder["userPrincipalName"])
    del emulator.state.users[holder["id"]]
    directory_sync.run(client=portal_graph)
    assert DirectoryUser.objects.get(object_id=holder["id"]).missing_from_entra_at is not None
    emulator.state.users[holder["id"]] = holder
    directory_sync.run(client=portal_graph)
    user = DirectoryUser.objects.get(object_id=holder["id"])
    assert user.missing_from_entra_at is None and user.removed_at is None and user.in_entra


def test_a_csv_user_whom_entra_lists_by_upn_becomes_that_entra_user_with_its_certificates(
    emulator: Emulator, portal_graph: GraphClient, make_certificate: Callable[..., Certificate]
) -> None:
    entra = next(iter(emulator.state.users.values()))
    _import_csv(f"userPrincipalName,displayName\n{entra['userPrincipalName']},Imported Person\n")
    imported = DirectoryUser.objects.get(upn=entra["userPrincipalName"])
    assert imported.source == "csv" and str(imported.object_id) != entra["id"]
    certificate = _give_certificate(imported, make_certificate, emulator)

    run = directory_sync.run(client=portal_graph)

    assert run.count("users imported from CSV found in Entra ID") == 1
    assert run.count("user principal names reassigned") == 0
    user = DirectoryUser.objects.get(pk=imported.pk)
    assert (str(user.object_id), user.source, user.display_name) == (
        entra["id"],
        "entra",
        entra["displayName"],
    )
    assert list(user.certificates.all()) == [certificate]
    assert DirectoryUser.objects.filter(upn__iexact=entra["userPrincipalName"]).count() == 1

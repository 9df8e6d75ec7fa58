"""Profiles written to Intune's deviceConfigurations: type, settings, rules, scope tags, assignments."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from devtools.emulator.server import Emulator
from directory.models import Group, Platform
from graph import intune_calls as calls
from graph import profile_sync, reconcile
from graph.client import GraphClient, GraphError
from graph.models import ProfileRecord, ReconcileFinding, TenantConnection
from portal.audit import Actor
from portal.models import AuditEvent, ScopeTag, User
from profiles import services
from profiles.models import ApplicabilityRule, Profile
from profiles.services import ProfileDraft
from profiles.specs import RuleSpec

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def _groups(emulator: Emulator, count: int) -> list[Group]:
    items = list(emulator.state.groups.values())[:count]
    return [
        Group.objects.get_or_create(
            object_id=uuid.UUID(g["id"]), defaults={"display_name": g["displayName"]}
        )[0]
        for g in items
    ]


def _windows(emulator: Emulator, name: str = "S/MIME Windows") -> Profile:
    include, exclude = _groups(emulator, 2)
    finance = ScopeTag.objects.create(name="Finance")
    return services.profile_create(
        actor=SYSTEM,
        draft=ProfileDraft(
            platform=Platform.WINDOWS,
            name=name,
            intended_purpose="smimeEncryption",
            key_storage_provider="useTpmKspOtherwiseUseSoftwareKsp",
            scope_tags=(ScopeTag.default(), finance),
            all_users=True,
            include_groups=(include,),
            exclude_groups=(exclude,),
            rules=(
                RuleSpec(
                    rule_type="include",
                    os_property=ApplicabilityRule.Property.OS_EDITION,
                    editions=("windows10Enterprise", "windows10Professional"),
                ),
            ),
        ),
    )


def _push(profile: Profile, client: GraphClient) -> str:
    record = ProfileRecord.objects.get(profile=profile)
    return profile_sync.push(record.pk, client=client)


def test_a_new_windows_profile_appears_in_intune_with_its_type_settings_rules_tags_and_assignments(
    emulator: Emulator, connected: TenantConnection, portal_graph: GraphClient
) -> None:
    profile = _windows(emulator)
    record = ProfileRecord.objects.get(profile=profile)
    assert record.get_state_display() == "Changed here, not yet sent"
    assert _push(profile, portal_graph) == "synced"
    record.refresh_from_db()
    assert record.get_state_display() == "In Intune"
    config = emulator.state.configurations[record.graph_id]
    assert config["@odata.type"] == "#microsoft.graph.windows10ImportedPFXCertificateProfile"
    assert config["intendedPurpose"] == "smimeEncryption"
    assert config["keyStorageProvider"] == "useTpmKspOtherwiseUseSoftwareKsp"
    rule = config["deviceManagementApplicabilityRuleOsEdition"]
    assert rule["ruleType"] == "include"
    assert rule["osEditionTypes"] == ["windows10Enterprise", "windows10Professional"]
    tags = {emulator.state.scope_tags[t]["displayName"] for t in config["roleScopeTagIds"]}
    assert tags == {"Default", "Finance"}
    targets = {
        a["target"]["@odata.type"].rsplit(".", 1)[-1] for a in emulator.state.assignments[record.graph_id]
    }
    assert targets == {
        "allLicensedUsersAssignmentTarget",
        "groupAssignmentTarget",
        "exclusionGroupAssignmentTarget",
    }


def test_an_android_fully_managed_profile_carries_its_certificate_access(
    emulator: Emulator, connected: TenantConnection, portal_graph: GraphClient
) -> None:
    profile = services.profile_create(
        actor=SYSTEM,
        draft=ProfileDraft(
            platform=Platform.ANDROID_FULLY_MANAGED,
            name="Android mail",
            intended_purpose="smimeSigning",
            certificate_access="specificApps",
            silent_access_packages=("com.microsoft.office.outlook",),
            all_devices=True,
        ),
    )
    assert _push(profile, portal_graph) == "synced"
    config = emulator.state.configurations[ProfileRecord.objects.get(profile=profile).graph_id]
    assert config["@odata.type"] == "#microsoft.graph.androidDeviceOwnerImportedPFXCertificateProfile"
    assert config["certificateAccessType"] == "specificApps"
    assert [d["packageId"] for d in config["silentCertificateAccessDetails"]] == [
        "com.microsoft.office.outlook"
    ]


def test_an_edit_patches_the_same_configuration_and_a_rerun_writes_nothing(
    emulator: Emulator, connected: TenantConnection, portal_graph: GraphClient
) -> None:
    profile = _windows(emulator)
    _push(profile, portal_graph)
    services.profile_update_basics(
        actor=SYSTEM, profile=profile, name="S/MIME Windows (new)", description="d"
    )
    assert _push(profile, portal_graph) == "synced"
    assert len(emulator.state.configurations) == 1
    assert next(iter(emulator.state.configurations.values()))["displayName"] == "S/MIME Windows (new)"
    writes = emulator.state.stats.profile_patches + emulator.state.stats.assigns
    profile_sync.queue(profile)
    assert _push(profile, portal_graph) == "synced"
    assert emulator.state.stats.profile_patches + emulator.state.stats.assigns == writes


def test_a_lost_answer_to_the_post_is_found_by_name_and_not_created_twice(
    emulator: Emulator, connected: TenantConnection, portal_graph: GraphClient
) -> None:
    profile = _windows(emulator)
    # Scope tag creation first, then the configuration POST whose answer is lost.
    emulator.config.lost_answers = 2
    with pytest.raises(profile_sync.RetryLater):
        _push(profile, portal_graph)
    emulator.config.lost_answers = 0
    assert _push(profile, portal_graph) == "synced"
    assert len(emulator.state.configurations) == 1
    assert len([t for t in emulator.state.scope_tags.values() if t["displayName"] == "Finance"]) == 1


def test_a_profile_graph_refuses_fails_with_the_graph_request_id(
    emulator: Emulator, connected: TenantConnection, portal_graph: GraphClient
) -> None:
    profile = _windows(emulator)
    ghost = Group.objects.create(display_name="Not in Entra")
    services.profile_set_assignments(
        actor=SYSTEM, profile=profile, all_users=False, all_devices=False, include=[ghost], exclude=[]
    )
    assert _push(profile, portal_graph) == "failed"
    record = ProfileRecord.objects.get(profile=profile)
    assert record.get_state_display() == "Failed"
    assert "was not found" in record.error["summary"]
    assert record.error["request_id"] in record.error["summary"]


def test_deleting_a_profile_deletes_its_configuration_in_intune(
    emulator: Emulator, connected: TenantConnection, portal_graph: GraphClient
) -> None:
    profile = _windows(emulator)
    _push(profile, portal_graph)
    record = ProfileRecord.objects.get(profile=profile)
    services.profile_delete(actor=SYSTEM, profile=profile)
    assert profile_sync.delete(record.pk, client=portal_graph) == "deleted"
    assert emulator.state.configurations == {}


@pytest.fixture
def no_mfa(settings: Any) -> None:
    settings.PORTAL_ENFORCE_MFA = False


@pytest.mark.usefixtures("no_mfa")
def test_the_profile_page_says_whether_the_profile_is_in_intune(
    emulator: Emulator,
    connected: TenantConnection,
    portal_graph: GraphClient,
    intune_admin: User,
    client: Client,
) -> None:
    profile = _windows(emulator)
    client.force_login(intune_admin)
    url = reverse("profiles:detail", args=[profile.code])
    assert "Changed here, not yet sent" in client.get(url).content.decode()
    _push(profile, portal_graph)
    page = client.get(url).content.decode()
    assert "In Intune" in page
    assert ProfileRecord.objects.get(profile=profile).graph_id in page


@pytest.mark.usefixtures("no_mfa")
def test_sending_again_needs_the_update_permission_and_is_audited(
    emulator: Emulator, connected: TenantConnection, intune_admin: User, helpdesk: User, client: Client
) -> None:
    profile = _windows(emulator)
    url = reverse("graph:profile_send", args=[profile.code])
    client.force_login(helpdesk)
    assert client.post(url).status_code in (403, 404)
    client.force_login(intune_admin)
    assert client.post(url).status_code == 302
    assert AuditEvent.objects.filter(activity="Send profile to Intune").count() == 1


@pytest.mark.usefixtures("no_mfa")
def test_reconcile_finds_profiles_changed_deleted_and_created_in_intune_behind_the_portals_back(
    emulator: Emulator,
    connected: TenantConnection,
    portal_graph: GraphClient,
    intune_admin: User,
    client: Client,
) -> None:
    changed = _windows(emulator, "Changed there")
    _push(changed, portal_graph)
    deleted = services.profile_duplicate(actor=SYSTEM, profile=changed, name="Deleted there")
    _push(deleted, portal_graph)
    changed_id = ProfileRecord.objects.get(profile=changed).graph_id
    emulator.state.configurations[changed_id]["keyStorageProvider"] = "useSoftwareKsp"
    del emulator.state.configurations[ProfileRecord.objects.get(profile=deleted).graph_id]
    emulator.state.configurations["stranger"] = {
        "@odata.type": "#microsoft.graph.iosImportedPFXCertificateProfile",
        "id": "stranger",
        "displayName": "Made in Intune",
        "intendedPurpose": "smimeSigning",
        "roleScopeTagIds": ["0"],
    }
    run = reconcile.run(client=portal_graph)
    kinds = {(f.kind, f.upn) for f in run.findings.filter(subject=ReconcileFinding.Subject.PROFILE)}
    assert kinds == {
        ("mismatch", "Changed there"),
        ("missing", "Deleted there"),
        ("only_in_intune", "Made in Intune"),
    }
    assert ProfileRecord.objects.get(profile=deleted).state == ProfileRecord.State.FAILED
    client.force_login(intune_admin)
    page = client.get(reverse("graph:reconcile")).content.decode()
    assert "Profiles: 2 in Intune, 0 matching, 1 missing in Intune, 1 only in Intune, 1 with settings" in page
    mismatch = run.findings.get(kind="mismatch", subject="profile")
    assert [d["field"] for d in mismatch.differences] == ["keyStorageProvider"]
    reconcile.resolve(SYSTEM, mismatch, "reupload")
    assert _push(changed, portal_graph) == "synced"
    assert (
        emulator.state.configurations[changed_id]["keyStorageProvider"] == "useTpmKspOtherwiseUseSoftwareKsp"
    )
    stranger = run.findings.get(kind="only_in_intune", subject="profile")
    reconcile.resolve(SYSTEM, stranger, "delete")
    record = ProfileRecord.objects.get(graph_id="stranger")
    assert profile_sync.delete(record.pk, client=portal_graph) == "deleted"
    assert "stranger" not in emulator.state.configurations


def test_device_and_user_statuses_and_certificate_states_are_read_page_by_page(
    emulator: Emulator, connected: TenantConnection, portal_graph: GraphClient
) -> None:
    profile = _windows(emulator)
    _push(profile, portal_graph)
    graph_id = ProfileRecord.objects.get(profile=profile).graph_id
    statuses = [
        {"deviceDisplayName": f"PC-{n}", "userPrincipalName": f"u{n}@contoso.example", "status": s}
        for n, s in enumerate(["compliant", "error", "unknown", "conflict", "notApplicable"] * 25)
    ]
    states = [
        {
            "deviceDisplayName": f"PC-{n}",
            "certificateThumbprint": f"{n:040x}",
            "certificateIssuanceState": "installed",
        }
        for n in range(120)
    ]
    emulator.state.device_statuses[graph_id] = [s | {"id": f"d{n}"} for n, s in enumerate(statuses)]
    emulator.state.certificate_states[graph_id] = [s | {"id": f"c{n}"} for n, s in enumerate(states)]
    emulator.state.user_statuses[graph_id] = [
        {"id": "u1", "userPrincipalName": "u1@contoso.example", "status": "compliant"}
    ]
    emulator.config.page_size = 50
    pages = list(calls.device_statuses(portal_graph, graph_id))
    assert len(pages) == 3  # 125 statuses, 50 a page
    assert sum(len(p) for p in pages) == 125
    certificates = [
        s for page in calls.certificate_states(portal_graph, graph_id, profile.graph_type) for s in page
    ]
    assert len(certificates) == 120 and certificates[0]["certificateIssuanceState"] == "installed"
    assert [u["status"] for page in calls.user_statuses(portal_graph, graph_id) for u in page] == [
        "compliant"
    ]
    overview = calls.device_status_overview(portal_graph, graph_id)
    assert (overview["successCount"], overview["errorCount"], overview["pendingCount"]) == (25, 25, 25)


def test_certificate_states_through_the_wrong_type_cast_are_refused(
    emulator: Emulator, connected: TenantConnection, portal_graph: GraphClient
) -> None:
    profile = _windows(emulator)
    _push(profile, portal_graph)
    graph_id = ProfileRecord.objects.get(profile=profile).graph_id
    with pytest.raises(GraphError) as caught:
        list(calls.certificate_states(portal_graph, graph_id, "iosImportedPFXCertificateProfile"))
    assert caught.value.status == 400


@pytest.mark.usefixtures("no_mfa")
def test_profiles_not_in_intune_are_sent_again_from_the_connection_page(
    emulator: Emulator, connected: TenantConnection, intune_admin: User, client: Client
) -> None:
    profile = _windows(emulator)
    ProfileRecord.objects.filter(profile=profile).update(state=ProfileRecord.State.FAILED)
    client.force_login(intune_admin)
    assert "1 profile is not in Intune" in client.get(reverse("graph:connection")).content.decode()
    assert client.post(reverse("graph:profiles_send_outstanding")).status_code == 302
    assert ProfileRecord.objects.get(profile=profile).get_state_display() == "Changed here, not yet sent"
    assert AuditEvent.objects.filter(activity="Send profiles to Intune").count() == 1
    assert "profile is not in Intune" not in client.get(reverse("graph:connection")).content.decode()


def test_status_reads_that_are_throttled_wait_as_asked_and_still_read_every_page(
    emulator: Emulator, connected: TenantConnection, portal_graph: GraphClient
) -> None:
    profile = _windows(emulator)
    _push(profile, portal_graph)
    graph_id = ProfileRecord.objects.get(profile=profile).graph_id
    emulator.state.device_statuses[graph_id] = [
        {"id": f"d{n}", "deviceDisplayName": f"PC-{n}", "status": "compliant"} for n in range(40)
    ]
    emulator.config.read_limit, emulator.config.read_window = 3, 1.0
    statuses = [s for page in calls.device_statuses(portal_graph, graph_id) for s in page]
    assert len(statuses) == 40  # 6 pages of 7 under 3 reads a second
    assert emulator.state.stats.read_throttled > 0


def test_a_profile_deleted_while_it_is_being_sent_is_deleted_from_intune_after_the_send(
    emulator: Emulator,
    connected: TenantConnection,
    portal_graph: GraphClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = _windows(emulator)
    record = ProfileRecord.objects.get(profile=profile)
    original = calls.create_configuration

    def create_then_delete(client: GraphClient, body: dict[str, Any]) -> dict[str, Any]:
        created = original(client, body)
        services.profile_delete(actor=SYSTEM, profile=Profile.objects.get(pk=profile.pk))
        return created

    monkeypatch.setattr(calls, "create_configuration", create_then_delete)
    assert profile_sync.push(record.pk, client=portal_graph) == "changed-meanwhile"
    record.refresh_from_db()
    assert (record.state, record.claim) == (ProfileRecord.State.DELETING, None)
    assert profile_sync.delete(record.pk, client=portal_graph) == "deleted"
    assert emulator.state.configurations == {}

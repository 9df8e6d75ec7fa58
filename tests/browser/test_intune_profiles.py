"""A profile created in a real browser reaches the schema-strict Graph emulator through a real worker,
and directory sync against that emulator succeeds."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from playwright.sync_api import Page, expect

from conftest import wait_for
from devtools.emulator.server import Emulator
from directory.models import Group
from graph.models import ProfileRecord, SyncRun
from portal.models import User

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_profile_made_in_the_wizard_appears_in_intune_and_directory_sync_succeeds(
    page: Page,
    make_admin: Callable[..., User],
    sign_in_as: Callable[[User], None],
    emulator: Emulator,
    celery_worker: subprocess.Popen[bytes],
) -> None:
    emulator.connect_portal()
    entra = next(iter(emulator.state.groups.values()))
    group = Group.objects.create(object_id=uuid.UUID(entra["id"]), display_name=entra["displayName"])
    sign_in_as(make_admin("policy_and_profile_manager"))

    page.goto("/profiles/")
    page.get_by_role("link", name="Create profile").click()
    page.get_by_label("Platform").select_option("windows10")
    page.get_by_role("button", name="Create").click()
    page.wait_for_selector('form[data-step="basics"]')
    page.get_by_label("Name").fill("Encryption for Windows")
    page.get_by_role("button", name="Next").click()
    page.wait_for_selector('form[data-step="settings"]')
    page.get_by_label("S/MIME encryption").check()
    page.get_by_label("Enroll to Software KSP").check()
    page.get_by_role("button", name="Next").click()
    page.wait_for_selector('form[data-step="scope"]')
    page.get_by_role("button", name="Next").click()
    page.wait_for_selector('form[data-step="assignments"]')
    page.get_by_label("Included groups").select_option(label=f"{group.display_name} (user group)")
    page.get_by_role("button", name="Next").click()
    page.wait_for_selector('form[data-step="rules"]')
    page.get_by_label("Property").select_option("osVersion")
    page.get_by_label("Minimum OS version").fill("10.0.19045.0")
    page.get_by_label("Maximum OS version").fill("10.0.26100.9999")
    page.get_by_role("button", name="Next").click()
    page.wait_for_selector('form[data-step="review"]')
    page.get_by_role("button", name="Create").click()
    page.wait_for_selector("h1:has-text('Encryption for Windows')")

    wait_for(lambda: ProfileRecord.objects.filter(state=ProfileRecord.State.SYNCED).exists(), timeout=60)
    page.reload()
    expect(page.get_by_test_id("intune-state")).to_contain_text("In Intune")

    record = ProfileRecord.objects.get()
    config = emulator.state.configurations[record.graph_id]
    assert config["@odata.type"] == "#microsoft.graph.windows10ImportedPFXCertificateProfile"
    assert config["displayName"] == "Encryption for Windows"
    assert config["intendedPurpose"] == "smimeEncryption"
    assert config["keyStorageProvider"] == "useSoftwareKsp"
    rule = config["deviceManagementApplicabilityRuleOsVersion"]
    assert (rule["ruleType"], rule["minOSVersion"], rule["maxOSVersion"]) == (
        "include",
        "10.0.19045.0",
        "10.0.26100.9999",
    )
    assert [emulator.state.scope_tags[t]["displayName"] for t in config["roleScopeTagIds"]] == ["Default"]
    targets = [a["target"] for a in emulator.state.assignments[record.graph_id]]
    assert targets == [{"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": entra["id"]}]

    tenant_admin = make_admin("intune_administrator", email="tenant-admin@contoso.example")
    TOTP.activate(tenant_admin, generate_totp_secret())
    sign_in_as(tenant_admin)
    page.goto("/tenant-admin/intune/directory-sync/")
    page.get_by_role("button", name="Sync now").click()
    wait_for(lambda: SyncRun.objects.exclude(state="running").exists(), timeout=60)
    run = SyncRun.objects.get()
    assert run.state == "done", run.error
    assert emulator.state.stats.bad_requests == 0

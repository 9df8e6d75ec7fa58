"""Tenant administration > Microsoft Intune in a real browser, against the Graph emulator over HTTPS,
with a real Celery worker doing the uploads."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from playwright.sync_api import Page, expect

from certs import imports, lifecycle
from certs.models import Certificate, GraphState
from certs.tests.importing import add_key, pfx_for
from devtools.emulator.server import Emulator
from directory.models import DirectoryUser
from portal.audit import Actor
from portal.models import ScopeTag, User


@pytest.fixture
def tenant_admin(make_admin: Callable[..., User], sign_in_as: Callable[[User], None]) -> User:
    admin = make_admin("intune_administrator", email="tenant-admin@contoso.example")
    TOTP.activate(admin, generate_totp_secret())
    sign_in_as(admin)
    return admin


def _imported_before_connecting(emulator: Emulator) -> Certificate:
    person = next(iter(emulator.state.users.values()))
    user = DirectoryUser.objects.create(
        object_id=uuid.UUID(person["id"]), upn=person["userPrincipalName"], display_name="Emulated user"
    )
    item = lifecycle.certificate_import(
        Actor.system(),
        entry=imports.Entry("user.pfx", pfx_for(user.upn, "Export-1"), "Export-1", user.upn),
        key=add_key(),
        tags=[ScopeTag.default()],
    )
    assert item.certificate is not None
    return item.certificate


def test_an_admin_connects_the_tenant_and_uploads_what_was_imported_before(
    page: Page,
    tenant_admin: User,
    emulator: Emulator,
    celery_worker: subprocess.Popen[bytes],
) -> None:
    certificate = _imported_before_connecting(emulator)
    assert certificate.batch is not None
    page.goto(f"/certificates/imports/{certificate.batch.code}/")
    expect(page.get_by_test_id("intune")).to_contain_text("No tenant is connected")

    page.goto("/tenant-admin/intune/")
    expect(page.get_by_test_id("outstanding")).to_contain_text("1 certificate is not in Intune")
    page.get_by_role("link", name="Connect", exact=True).click()
    page.get_by_label("Tenant id").fill(emulator.config.tenant_id)
    page.get_by_label("Application (client) id").fill(emulator.config.client_id)
    page.get_by_role("textbox", name="Client secret").fill(emulator.config.client_secret)
    page.get_by_label("Sign-in endpoint override").fill(emulator.url)
    page.get_by_label("Graph endpoint override").fill(emulator.url)
    page.get_by_label("Trusted CA for the overrides (PEM)").fill(emulator.ca_path.read_text())
    page.get_by_role("button", name="Save").click()

    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text("Signed in", exact=True)).to_be_visible()
    page.get_by_test_id("upload-outstanding").click()
    expect(page.get_by_text("1 certificate(s) queued for upload to Intune.")).to_be_visible()

    # The batch page keeps polling while the upload is pending, and shows where it landed.
    page.goto(f"/certificates/imports/{certificate.batch.code}/")
    expect(page.get_by_test_id("intune-synced")).to_contain_text("1", timeout=60_000)
    expect(page.get_by_test_id("intune-state")).to_have_text("In Intune")
    certificate.refresh_from_db()
    assert certificate.graph_state == GraphState.SYNCED
    record = emulator.state.pfx[f"{certificate.user.object_id.hex}-{certificate.thumbprint.lower()}"]
    assert record["userPrincipalName"] == certificate.upn

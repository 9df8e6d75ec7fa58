"""Certificate connectors in a real browser, with the real agent program enrolling from the token the page shows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from conftest import wait_for
from connectors.models import Connector

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast_checkins(settings) -> None:
    settings.CONNECTOR_HEARTBEAT_INTERVAL = 1
    settings.PORTAL_ENFORCE_MFA = False


def test_an_admin_adds_a_connector_sees_it_healthy_and_revokes_it(
    page: Page, sign_in_as, intune_admin, live_server, tmp_path
):
    sign_in_as(intune_admin)
    page.goto("/tenant-admin/")
    page.get_by_role("link", name="Certificate connectors").click()
    page.get_by_role("link", name="Add").click()
    page.get_by_label("Name").fill("Paris")
    page.get_by_role("button", name="Create enrollment token").click()
    token = page.get_by_test_id("enrollment-token").input_value()
    assert token.startswith("pfxe_")

    env = {"PATH": os.environ.get("PATH", ""), "CONNECTOR_KEY_PASSPHRASE": "browser test passphrase"}
    argv = [sys.executable, "-m", "connectors.agent", "--server", str(live_server), "--enroll", token]
    agent = subprocess.Popen(
        [*argv, "--state-dir", str(tmp_path / "agent"), "--host-name", "paris-01"],
        cwd=settings.BASE_DIR,
        env=env,
    )
    try:
        wait_for(lambda: Connector.objects.filter(name="Paris", last_seen__isnull=False).exists())
        page.goto("/connectors/")
        row = page.get_by_role("row", name="Paris")
        expect(row).to_contain_text("paris-01")
        expect(row.get_by_test_id("status")).to_have_text("Healthy")
        row.get_by_role("link", name="Paris").click()
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Revoke").click()
        expect(page.get_by_test_id("status").first).to_have_text("Revoked")
        wait_for(lambda: agent.poll() is not None)
        assert agent.returncode == 3
    finally:
        if agent.poll() is None:
            agent.kill()
        agent.wait(timeout=10)

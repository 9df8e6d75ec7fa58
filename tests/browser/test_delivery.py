"""End to end with real processes: a certificate imported in the browser reaches a simulated Windows
device through the connector agent, rolls over without a gap, and is removed once deleted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.conf import settings
from playwright.sync_api import Page, expect

from certs.models import Certificate, EncryptionKey
from certs.tests.importing import directory_user, pfx_for
from conftest import wait_for
from connectors import enrolment
from delivery import credentials
from delivery.models import DeliveryState
from directory.models import Device, Platform, WindowsEdition
from portal.audit import Actor
from portal.models import User
from profiles.models import DeliveryStatus, IntendedPurpose, KeyStorageProvider, Profile

ALICE = "alice@contoso.example"
SECRET = "pfxs_end-to-end-device-enrolment-secret"


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*argv: str, log: str) -> subprocess.Popen[bytes]:
        # What another machine would have: the portal's URL, no database settings.
        env = {"PATH": os.environ.get("PATH", ""), "CONNECTOR_KEY_PASSPHRASE": "e2e", "PYTHONUNBUFFERED": "1"}
        with (tmp_path / log).open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, *argv], cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _stores(log: Path) -> list[set[str]]:
    if not log.exists():
        return []
    return [set(json.loads(line)["store"]) for line in log.read_text().splitlines() if line.strip()]


def _import(page: Page, pfx: Path, password: str, purpose: str) -> None:
    page.goto("/certificates/import/")
    page.get_by_label("PFX file").set_input_files(str(pfx))
    page.get_by_label("Password").fill(password)
    page.get_by_label("User").fill(ALICE)
    page.get_by_label("Intended purpose").select_option(purpose)
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_test_id("check")).to_contain_text("Ready to import")
    page.get_by_label("PFX file").set_input_files(str(pfx))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_test_id("progress")).to_have_attribute("data-state", "done")


@pytest.mark.worker
def test_an_imported_certificate_reaches_a_simulated_windows_device_rolls_over_and_is_removed(
    page: Page,
    live_server: Any,
    make_admin: Callable[..., User],
    sign_in_as: Callable[[User], None],
    celery_worker: subprocess.Popen[bytes],
    processes: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
    settings: Any,
) -> None:
    settings.DEVICE_POLICY_RECHECK_SECONDS = 0
    settings.DEVICE_API_RATE_PER_MINUTE = 10_000
    admin = make_admin("intune_administrator", email="admin@contoso.example")
    TOTP.activate(admin, generate_totp_secret())
    sign_in_as(admin)
    server = str(live_server)
    # The connector agent enrols, publishes its key; imports encrypt passwords to it.
    token = enrolment.token_create(Actor.system(), name="Connector")[1]
    processes(
        "-m",
        "connectors.agent",
        "--server",
        server,
        "--state-dir",
        str(tmp_path / "agent"),
        "--enroll",
        token,
        "--interval",
        "1",
        log="agent.log",
    )
    wait_for(lambda: EncryptionKey.objects.filter(possession_proven_at__isnull=False).exists(), timeout=30)
    EncryptionKey.objects.update(is_default=True)

    alice = directory_user(ALICE, "Alice Example")
    device = Device(
        name="PC-ALICE", primary_user=alice, platform=Platform.WINDOWS, os_edition=WindowsEdition.ENTERPRISE
    )
    device.set_os_version("10.0.22631.1")
    device.save()
    profile = Profile.objects.create(
        name="S/MIME signing - Windows",
        platform=Platform.WINDOWS,
        intended_purpose=IntendedPurpose.SMIME_SIGNING,
        key_storage_provider=KeyStorageProvider.SOFTWARE,
        all_users=True,
    )
    credentials.secret_create(Actor.system(), value=SECRET)
    stores = tmp_path / "stores.jsonl"
    processes(
        "-m",
        "delivery.simulator",
        "--server",
        server,
        "--secret",
        SECRET,
        "--device",
        f"{device.device_id}:{device.platform}:{device.name}",
        "--interval",
        "0.5",
        "--store-log",
        str(stores),
        log="devices.log",
    )

    first = tmp_path / "alice-1.pfx"
    first.write_bytes(pfx_for(ALICE, "Alice-Export-1", days=365))
    _import(page, first, "Alice-Export-1", IntendedPurpose.SMIME_SIGNING)
    old = Certificate.objects.get(user=alice)
    wait_for(lambda: any(old.thumbprint in s for s in _stores(stores)), timeout=60)
    succeeded = DeliveryState.objects.filter(device=device, status=DeliveryStatus.SUCCEEDED)
    wait_for(lambda: succeeded.filter(certificate=old).exists(), timeout=10)

    page.goto(f"/profiles/{profile.code}/")
    expect(page.get_by_test_id("device-status").get_by_role("row", name="Succeeded")).to_contain_text("1")
    page.goto(f"/users/{alice.object_id}/")
    row = page.get_by_test_id("user-profiles").get_by_role("row").filter(has_text="PC-ALICE")
    expect(row).to_contain_text("Succeeded")

    # A newer certificate: installed before the superseded one goes.
    second = tmp_path / "alice-2.pfx"
    second.write_bytes(pfx_for(ALICE, "Alice-Export-2", days=700))
    _import(page, second, "Alice-Export-2", IntendedPurpose.SMIME_SIGNING)
    new = Certificate.objects.exclude(pk=old.pk).get(user=alice)
    wait_for(lambda: _stores(stores)[-1] == {new.thumbprint}, timeout=60)
    history = _stores(stores)
    since_first = history[next(i for i, s in enumerate(history) if s) :]
    assert all(since_first), "the device was left without a signing certificate"
    assert any(s == {old.thumbprint, new.thumbprint} for s in history)
    assert DeliveryState.objects.get(device=device, certificate=old).status == DeliveryStatus.REMOVED

    # Deleted in the portal: gone from the device at its next check-in.
    page.goto(f"/certificates/{new.code}/delete/")
    page.get_by_label("Type the thumbprint to confirm").fill(new.thumbprint)
    page.get_by_role("button", name="Delete certificate").click()
    expect(page.get_by_text(f"Certificate {new.thumbprint} of {ALICE} deleted.")).to_be_visible()
    wait_for(lambda: new.thumbprint not in _stores(stores)[-1], timeout=60)
    removed = DeliveryState.objects.filter(device=device, certificate_thumbprint=new.thumbprint)
    wait_for(lambda: removed.filter(status=DeliveryStatus.REMOVED).exists(), timeout=10)

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from delivery.models import DeliveryState
from delivery.tests import builders as b
from portal.models import AuditEvent, User
from profiles.models import DeliveryStatus
from profiles.tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_help_desk_sees_a_certificate_on_each_device_and_resends_it_to_one_device(
    page: Page, make_admin: Callable[..., User], sign_in_as: Callable[[User], None]
) -> None:
    alice = f.user("alice@contoso.example")
    laptop, phone = f.device("LAPTOP-ALICE", alice), f.device("PHONE-ALICE", alice)
    smime = b.profile("S/MIME encryption")
    cert = b.certificate(alice)
    b.state(smime, laptop, cert, DeliveryStatus.SUCCEEDED)
    failed = b.state(
        smime, phone, cert, DeliveryStatus.ERROR, code="pfx_open_failed", message="Wrong password"
    )
    sign_in_as(make_admin("help_desk_operator", email="helpdesk@contoso.example"))

    page.goto(f"/users/{alice.object_id}/")
    deliveries = page.get_by_test_id("user-deliveries")
    on_laptop = deliveries.locator('[data-device="LAPTOP-ALICE"]')
    on_phone = deliveries.locator('[data-device="PHONE-ALICE"]')
    expect(on_laptop.locator("tbody tr")).to_contain_text(cert.thumbprint[:16])
    expect(on_laptop.locator("[data-state]")).to_have_text("Succeeded")
    expect(on_phone.locator("[data-state]")).to_have_text("Error")
    expect(on_phone).to_contain_text("pfx_open_failed Wrong password")

    on_phone.get_by_role("button", name="Resend to PHONE-ALICE").click()

    expect(page.get_by_role("status")).to_contain_text(
        "PHONE-ALICE gets 1 certificate again at its next check-in"
    )
    expect(
        page.get_by_test_id("user-deliveries").locator('[data-device="PHONE-ALICE"] [data-state]')
    ).to_have_text("Pending")
    expect(
        page.get_by_test_id("user-deliveries").locator('[data-device="LAPTOP-ALICE"] [data-state]')
    ).to_have_text("Succeeded")
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.PENDING
    assert DeliveryState.objects.get(device=laptop).status == DeliveryStatus.SUCCEEDED
    event = AuditEvent.objects.get(activity="Resend certificates to device")
    assert event.actor_name == "helpdesk@contoso.example"
    assert [r["name"] for r in event.resources] == ["PHONE-ALICE", "S/MIME encryption"]

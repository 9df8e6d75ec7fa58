"""What admins and the help desk see of the status table: device, user, tenant, profile and Home."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from delivery import panels
from delivery.models import DeliveryState
from delivery.tests import builders as b
from portal.models import ScopeTag, User
from profiles.models import DeliveryStatus
from profiles.tests import factories as f

pytestmark = pytest.mark.django_db


def _client(user: User, settings: Any) -> Client:
    settings.PORTAL_ENFORCE_MFA = False
    client = Client()
    client.force_login(user)
    return client


def _csv(response: Any) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def fleet(make_tag: Callable[[str], ScopeTag]) -> dict[str, Any]:
    paris, oslo = make_tag("Paris"), make_tag("Oslo")
    alice, bob = f.user("alice@contoso.example"), f.user("bob@contoso.example")
    laptop, phone, bobs = (
        f.device("LAPTOP-ALICE", alice),
        f.device("PHONE-ALICE", alice),
        f.device("PC-BOB", bob),
    )
    mine, theirs = b.profile("Paris S/MIME", paris), b.profile("Oslo S/MIME", oslo)
    old = b.certificate(alice, days_left=-200)  # long expired: still listed, there is no window
    new, bobs_cert = b.certificate(alice), b.certificate(bob)
    rows = {
        "old": b.state(mine, laptop, old, DeliveryStatus.REMOVED),
        "new": b.state(mine, laptop, new, DeliveryStatus.SUCCEEDED),
        "phone": b.state(
            mine, phone, new, DeliveryStatus.ERROR, code="pfx_open_failed", message="Wrong password"
        ),
        "oslo": b.state(theirs, laptop, new, DeliveryStatus.ERROR, code="key_not_held", message="No key"),
        "bob": b.state(mine, bobs, bobs_cert, DeliveryStatus.ERROR, code="pfx_open_failed", message="Bad"),
    }
    DeliveryState.objects.filter(pk=rows["old"].pk).update(changed_at=timezone.now() - timedelta(days=90))
    return {
        "paris": paris,
        "alice": alice,
        "laptop": laptop,
        "phone": phone,
        "mine": mine,
        "old": old,
        "new": new,
    }


def test_a_devices_page_lists_every_certificate_on_it_with_user_serial_issuer_subject_expiry_state_and_profile(
    fleet: dict[str, Any], make_admin: Callable[..., User], settings: Any
) -> None:
    admin = _client(make_admin("intune_administrator"), settings)

    page = admin.get(reverse("directory:device", args=[fleet["laptop"].device_id])).content.decode()

    for cert in (fleet["old"], fleet["new"]):
        assert cert.thumbprint[:16] in page and cert.serial in page
    assert "CN=Contoso Issuing CA 01" in page and "CN=Alice, E=alice@contoso.example" in page
    assert fleet["old"].not_after.strftime("%Y-%m-%d") in page
    assert "Removed" in page and "Succeeded" in page and "key_not_held" in page
    assert "Paris S/MIME" in page and "Oslo S/MIME" in page and "alice@contoso.example" in page


def test_a_scoped_admin_sees_only_the_rows_of_the_profiles_they_may_read(
    fleet: dict[str, Any], make_admin: Callable[..., User], settings: Any
) -> None:
    helpdesk = _client(make_admin("help_desk_operator", tags=[fleet["paris"]]), settings)

    device_page = helpdesk.get(reverse("directory:device", args=[fleet["laptop"].device_id])).content.decode()
    user_page = helpdesk.get(reverse("directory:user", args=[fleet["alice"].object_id])).content.decode()
    listed = _csv(helpdesk.get(reverse("delivery:certificates_csv")))

    assert "Paris S/MIME" in device_page and "Oslo S/MIME" not in device_page
    assert "key_not_held" not in user_page and "pfx_open_failed" in user_page
    assert {row["Profile"] for row in listed} == {"Paris S/MIME"}


def test_the_user_page_shows_each_certificate_on_each_device_with_state_time_and_last_error(
    fleet: dict[str, Any], make_admin: Callable[..., User], settings: Any
) -> None:
    helpdesk = _client(make_admin("help_desk_operator"), settings)

    response = helpdesk.get(reverse("directory:user", args=[fleet["alice"].object_id]))

    panel = next(
        p["context"] for p in response.context["panels"] if p["template"] == "delivery/_user_panel.html"
    )
    by_device = {entry["device"].device_name: [r.status for r in entry["rows"]] for entry in panel["devices"]}
    assert by_device == {
        # Oslo's profile first, then Paris's newest certificate before the one it replaced.
        "LAPTOP-ALICE": [DeliveryStatus.ERROR, DeliveryStatus.SUCCEEDED, DeliveryStatus.REMOVED],
        "PHONE-ALICE": [DeliveryStatus.ERROR],
    }
    page = response.content.decode()
    assert "Wrong password" in page and "Resend to PHONE-ALICE" in page
    assert "PC-BOB" not in page


def test_a_read_only_operator_sees_the_user_page_without_resend(
    fleet: dict[str, Any], make_admin: Callable[..., User], settings: Any
) -> None:
    reader = _client(make_admin("read_only_operator"), settings)

    page = reader.get(reverse("directory:user", args=[fleet["alice"].object_id])).content.decode()

    assert "Wrong password" in page and "Resend to" not in page


def test_the_tenant_monitor_filters_by_state_error_platform_and_search_and_exports_the_same_rows(
    fleet: dict[str, Any], make_admin: Callable[..., User], settings: Any
) -> None:
    admin = _client(make_admin("intune_administrator"), settings)
    url = reverse("delivery:certificates")

    everything = admin.get(url)
    failing = admin.get(url, {"status": "error", "error": "pfx_open_failed"})
    alices = admin.get(url, {"q": "alice@contoso"})
    by_thumbprint = admin.get(url, {"q": fleet["old"].thumbprint[:12]})
    exported = _csv(
        admin.get(reverse("delivery:certificates_csv"), {"status": "error", "error": "pfx_open_failed"})
    )

    assert everything.context["page"].paginator.count == 5
    assert {r.device.name for r in failing.context["page"]} == {"PHONE-ALICE", "PC-BOB"}
    assert alices.context["page"].paginator.count == 4
    assert [r.certificate_id for r in by_thumbprint.context["page"]] == [fleet["old"].pk]
    assert sorted(row["Device"] for row in exported) == ["PC-BOB", "PHONE-ALICE"]
    assert (
        exported[0]["Error code"] == "pfx_open_failed" and exported[0]["Issuer"] == "CN=Contoso Issuing CA 01"
    )


def test_the_monitor_refuses_an_unknown_state_with_a_clear_message(
    make_admin: Callable[..., User], settings: Any
) -> None:
    admin = _client(make_admin("intune_administrator"), settings)

    page = admin.get(reverse("delivery:certificates"), {"status": "exploded"})
    export = admin.get(reverse("delivery:certificates_csv"), {"status": "exploded"})

    assert page.status_code == 400 and "Select a valid choice" in page.content.decode()
    assert export.status_code == 400


def test_the_monitor_needs_profile_and_directory_reads(
    make_admin: Callable[..., User], settings: Any
) -> None:
    role_admin = _client(make_admin("intune_role_administrator"), settings)

    assert role_admin.get(reverse("delivery:certificates")).status_code == 403
    assert role_admin.get(reverse("delivery:certificates_csv")).status_code == 403


def test_home_counts_devices_failing_by_error_code(
    fleet: dict[str, Any], make_admin: Callable[..., User], settings: Any
) -> None:
    admin = make_admin("intune_administrator")
    scoped = make_admin("help_desk_operator", tags=[fleet["paris"]])

    section = _home_section(admin)
    scoped_section = _home_section(scoped)

    assert section["failing_devices"] == 3  # LAPTOP-ALICE (Oslo), PHONE-ALICE, PC-BOB
    assert [(c.code, c.devices) for c in section["failing_codes"]] == [
        ("pfx_open_failed", 2),
        ("key_not_held", 1),
    ]
    assert [(c.code, c.devices) for c in scoped_section["failing_codes"]] == [("pfx_open_failed", 2)]
    page = _client(admin, settings).get(reverse("home")).content.decode()
    assert "pfx_open_failed" in page and "key_not_held" in page


def _home_section(user: User) -> dict[str, Any]:
    request = RequestFactory().get(reverse("home"))
    request.user = user
    context = panels.home_section(request)  # type: ignore[arg-type]
    assert context is not None
    return context


def test_a_profiles_device_status_counts_states_shows_each_devices_last_error_and_offers_retry(
    make_admin: Callable[..., User], settings: Any
) -> None:
    staff = f.group("Staff")
    alice = f.user("alice@contoso.example", staff)
    laptop = f.device("LAPTOP-ALICE", alice)
    desktop = f.device("DESKTOP-ALICE", alice)
    smime = f.profile("S/MIME encryption", include=[staff])
    smime.scope_tags.set([ScopeTag.default()])
    cert = b.certificate(alice)
    b.state(smime, laptop, cert, DeliveryStatus.ERROR, code="pfx_open_failed", message="Wrong password")
    b.state(smime, desktop, cert, DeliveryStatus.SUCCEEDED)
    manager = _client(make_admin("policy_and_profile_manager"), settings)
    reader = _client(make_admin("read_only_operator"), settings)

    page = manager.get(reverse("profiles:report", args=[smime.code]))
    failing = manager.get(reverse("profiles:report", args=[smime.code]), {"error": "pfx_open_failed"})
    exported = _csv(manager.get(reverse("profiles:report_csv", args=[smime.code])))
    read_only = reader.get(reverse("profiles:report", args=[smime.code])).content.decode()

    counts = {state: n for state, _label, n in page.context["counts"]}
    assert counts[DeliveryStatus.ERROR] == 1 and counts[DeliveryStatus.SUCCEEDED] == 1
    assert "Retry failed (1 device)" in page.content.decode() and "Retry failed" not in read_only
    assert [row["device"].name for row in failing.context["rows"]] == ["LAPTOP-ALICE"]
    by_device = {row["Device"]: row for row in exported}
    assert by_device["LAPTOP-ALICE"]["Error code"] == "pfx_open_failed"
    assert by_device["LAPTOP-ALICE"]["Certificates reported"] == "1"


def test_the_monitor_pages_a_large_table_without_counting_all_of_it(
    fleet: dict[str, Any], make_admin: Callable[..., User], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("delivery.views.PAGE_SIZE", 1)
    monkeypatch.setattr("portal.lib.paging.COUNT_AT_LEAST", 2)
    admin = _client(make_admin("intune_administrator"), settings)

    first = admin.get(reverse("delivery:certificates"))
    last = admin.get(reverse("delivery:certificates"), {"page": 5})

    assert "more than 2 certificates on devices" in first.content.decode()
    assert first.context["page"].has_next()
    assert [r.device.name for r in last.context["page"]] == ["LAPTOP-ALICE"]  # the oldest row
    assert not last.context["page"].has_next()


def test_a_search_matching_many_users_still_finds_their_rows(
    fleet: dict[str, Any], make_admin: Callable[..., User], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("delivery.reports.SEARCH_IDS", 0)  # every search is "too many ids"
    admin = _client(make_admin("intune_administrator"), settings)

    found = admin.get(reverse("delivery:certificates"), {"q": "PHONE-ALI"})

    assert [r.device.name for r in found.context["page"]] == ["PHONE-ALICE"]

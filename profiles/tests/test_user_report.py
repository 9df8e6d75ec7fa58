"""The user status report: one row per user, the worst of their devices', as the overview counts them."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from delivery.models import DeliveryState
from directory.models import Device, Group
from portal.models import AuditEvent
from profiles.models import DeliveryStatus, Profile
from profiles.reports import evaluate
from profiles.targeting import STATE_LABELS, STATUSES
from profiles.tests import factories as f


@pytest.fixture
def staff_profile(db: None) -> Profile:
    """A small tenant with one user in each state, and a profile for the Staff group minus Contractors."""
    staff, contractors = f.group("Staff"), f.group("Contractors")
    alice = f.user("alice@contoso.example", staff)  # a PC and an iPhone: Pending beats Not applicable
    f.device("PC-ALICE", alice)
    f.device("IPHONE-ALICE", alice, platform="iOS", version="17.6")
    bob = f.user("bob@contoso.example", staff)  # only an iPhone: Not applicable
    f.device("IPHONE-BOB", bob, platform="iOS", version="18.1")
    carol = f.user("carol@contoso.example", staff)  # delivered on one PC, failed on the other: Error
    f.device("PC-CAROL-1", carol)
    f.device("PC-CAROL-2", carol)
    dan = f.user("dan@contoso.example", staff)  # delivered: Succeeded
    f.device("PC-DAN", dan)
    f.user("=erin@contoso.example", staff)  # no device yet: Pending
    frank = f.user("frank@contoso.example", staff, contractors)  # excluded: not a status
    f.device("PC-FRANK", frank)
    grace = f.user("grace@contoso.example")  # not targeted
    f.device("PC-GRACE", grace)
    gone = f.user("gone@contoso.example", staff)  # removed from the directory, device still enrolled
    f.device("PC-GONE", gone)
    gone.removed_at = timezone.now()
    gone.save(update_fields=["removed_at"])
    profile = f.profile("Staff encryption", include=[staff], exclude=[contractors])
    for name, status in (
        ("PC-CAROL-1", DeliveryStatus.SUCCEEDED),
        ("PC-CAROL-2", DeliveryStatus.ERROR),
        ("PC-DAN", DeliveryStatus.SUCCEEDED),
    ):
        DeliveryState.objects.create(profile=profile, device=Device.objects.get(name=name), status=status)
    return profile


EXPECTED = {
    "alice@contoso.example": DeliveryStatus.PENDING,
    "bob@contoso.example": DeliveryStatus.NOT_APPLICABLE,
    "carol@contoso.example": DeliveryStatus.ERROR,
    "dan@contoso.example": DeliveryStatus.SUCCEEDED,
    "=erin@contoso.example": DeliveryStatus.PENDING,
}


@pytest.fixture
def operator(make_admin, client: Client) -> Client:
    client.force_login(make_admin("read_only_operator"))
    return client


def _csv(client: Client, profile: Profile, **params: str) -> list[dict[str, str]]:
    response = client.get(reverse("profiles:user_report_csv", args=[profile.code]), params)
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('-users.csv"')
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    return list(csv.DictReader(io.StringIO(body)))


def test_each_user_gets_the_worst_status_of_their_devices(staff_profile: Profile):
    evaluation = evaluate(staff_profile)
    users = list(evaluation.user_rows().order_by("upn"))
    rows = {row.user.upn: row.state for row in evaluation.user_details(users)}
    assert rows == EXPECTED


def test_the_report_and_its_csv_agree_with_the_overview_counts(operator: Client, staff_profile: Profile):
    summary = evaluate(staff_profile).summary()
    exported = _csv(operator, staff_profile)
    assert {row["User"].lstrip("'"): row["Status"] for row in exported} == {
        upn: STATE_LABELS[state] for upn, state in EXPECTED.items()
    }
    for status in STATUSES:
        page = operator.get(reverse("profiles:user_report", args=[staff_profile.code]), {"status": status})
        assert page.status_code == 200
        assert page.context["page"].paginator.count == summary.users[status]
        assert len(_csv(operator, staff_profile, status=status)) == summary.users[status]


def test_the_report_explains_each_status(operator: Client, staff_profile: Profile):
    exported = {row["User"]: row for row in _csv(operator, staff_profile)}
    assert exported["bob@contoso.example"]["Reason"] == "Platform is not Windows 10 and later"
    assert exported["alice@contoso.example"]["Reason"] == "Waiting for the device to check in"
    assert exported["alice@contoso.example"]["Devices"] == "IPHONE-ALICE (Not applicable), PC-ALICE (Pending)"
    assert exported["carol@contoso.example"]["Reason"] == "The device reported an error"
    assert exported["'=erin@contoso.example"]["Reason"] == "The user has no enrolled device yet"


def test_the_csv_neutralises_cells_that_spreadsheets_would_run_as_formulas(
    operator: Client, staff_profile: Profile
):
    mallory = f.user("mallory@contoso.example", Group.objects.get(display_name="Staff"))
    f.device("+cmd|' /C calc'!A0", mallory)
    exported = {row["User"]: row for row in _csv(operator, staff_profile)}
    assert "'=erin@contoso.example" in exported
    assert exported["mallory@contoso.example"]["Devices"].startswith("'+cmd")
    response = operator.get(reverse("profiles:report_csv", args=[staff_profile.code]))
    devices = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert "\n'+cmd|" in devices.replace("\r\n", "\n")


def test_the_report_filters_by_search_and_pages_without_javascript(operator: Client, staff_profile: Profile):
    url = reverse("profiles:user_report", args=[staff_profile.code])
    page = operator.get(url, {"q": "ALICE"})
    assert [r.user.upn for r in page.context["rows"]] == ["alice@contoso.example"]
    assert b"<html" in page.content.lower()
    assert b"IPHONE-ALICE" in page.content
    assert operator.get(url, {"status": "excluded"}).status_code == 400
    assert operator.get(url, {"page": "99"}).context["page"].number == 1


def test_htmx_requests_get_only_the_results(operator: Client, staff_profile: Profile):
    url = reverse("profiles:user_report", args=[staff_profile.code])
    page = operator.get(url, {"status": "pending"}, headers={"HX-Request": "true"})
    assert page.content.lstrip().startswith(b'<div id="results">')
    assert b"alice@contoso.example" in page.content and b"bob@contoso.example" not in page.content


def test_the_overview_links_each_user_count_to_the_report(operator: Client, staff_profile: Profile):
    body = operator.get(reverse("profiles:detail", args=[staff_profile.code])).content.decode()
    report = reverse("profiles:user_report", args=[staff_profile.code])
    assert f'href="{report}?status=pending">2</a>' in body
    assert f'href="{report}"' in body


def test_a_read_only_operator_views_the_user_report_but_cannot_change_the_profile(
    operator: Client, staff_profile: Profile
):
    code = staff_profile.code
    assert operator.get(reverse("profiles:user_report", args=[code])).status_code == 200
    assert operator.get(reverse("profiles:user_report_csv", args=[code])).status_code == 200
    assert operator.post(reverse("profiles:user_report", args=[code])).status_code == 405
    assert operator.post(reverse("profiles:edit", args=[code, "assignments"]), {}).status_code == 403
    assert operator.post(reverse("profiles:delete", args=[code])).status_code == 403
    assert staff_profile.assignments.count() == 2
    assert not AuditEvent.objects.filter(category="Device configuration").exists()


def test_admins_outside_the_profiles_scope_tags_get_404(make_admin, make_tag, client: Client, staff_profile):
    staff_profile.scope_tags.set([make_tag("Paris")])
    client.force_login(make_admin("read_only_operator", tags=[make_tag("Berlin")]))
    assert client.get(reverse("profiles:user_report", args=[staff_profile.code])).status_code == 404
    assert client.get(reverse("profiles:user_report_csv", args=[staff_profile.code])).status_code == 404


def test_admins_without_profile_access_get_403(make_admin, client: Client, staff_profile: Profile):
    client.force_login(make_admin())
    assert client.get(reverse("profiles:user_report", args=[staff_profile.code])).status_code == 403

from __future__ import annotations

from collections.abc import Callable

import pytest

from api.tests.conftest import ApiClient
from directory.models import Group
from portal.models import AuditEvent, User
from profiles.models import Profile

pytestmark = pytest.mark.django_db


def test_a_profile_is_created_updated_assigned_reported_on_and_deleted(
    make_admin: Callable[..., User], api_as: Callable[..., ApiClient]
) -> None:
    sales = Group.objects.create(display_name="Sales")
    interns = Group.objects.create(display_name="Interns")
    client = api_as(make_admin("policy_and_profile_manager"), name="profiles-job")
    created = client.post(
        "/profiles",
        json={
            "platform": "iOS",
            "name": "Mail encryption",
            "intended_purpose": "smimeEncryption",
            "include_groups": [str(sales.object_id)],
        },
    )
    assert created.status_code == 201, created.content
    code = created.json()["code"]
    assert [g["display_name"] for g in created.json()["include_groups"]] == ["Sales"]

    renamed = client.send("PATCH", f"/profiles/{code}", json={"name": "Mail encryption (iOS)"})
    assert renamed.json()["name"] == "Mail encryption (iOS)"
    assigned = client.send(
        "PUT",
        f"/profiles/{code}/assignments",
        json={"all_users": True, "exclude_groups": [str(interns.object_id)]},
    )
    body = assigned.json()
    assert (body["all_users"], body["include_groups"]) == (True, [])
    assert [g["display_name"] for g in body["exclude_groups"]] == ["Interns"]
    both = client.send(
        "PUT",
        f"/profiles/{code}/assignments",
        json={"include_groups": [str(sales.object_id)], "exclude_groups": [str(sales.object_id)]},
    )
    assert both.json()["code"] == "group_included_and_excluded"

    status = client.get(f"/profiles/{code}/status").json()
    assert set(status) == {"devices", "users", "reasons"}
    assert [p["name"] for p in client.get("/profiles").json()] == ["Mail encryption (iOS)"]

    assert client.delete(f"/profiles/{code}").status_code == 204
    assert not Profile.objects.exists()
    activities = set(
        AuditEvent.objects.filter(actor_name__contains="profiles-job").values_list("activity", flat=True)
    )
    assert {"Create PKCS imported certificate profile", "Update profile assignments"} <= activities


def test_a_help_desk_token_reads_profiles_but_cannot_assign_them(
    make_admin: Callable[..., User], api_as: Callable[..., ApiClient]
) -> None:
    manager = api_as(make_admin("policy_and_profile_manager"))
    code = manager.post(
        "/profiles", json={"platform": "macOS", "name": "Signing", "intended_purpose": "smimeSigning"}
    ).json()["code"]
    helpdesk = api_as(make_admin("help_desk_operator"))
    assert helpdesk.get(f"/profiles/{code}").status_code == 200
    refused = helpdesk.send("PUT", f"/profiles/{code}/assignments", json={"all_users": True})
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert Profile.objects.get().all_users is False


def test_text_with_a_nul_character_is_refused_before_anything_is_stored(
    make_admin: Callable[..., User], api_as: Callable[..., ApiClient]
) -> None:
    client = api_as(make_admin("policy_and_profile_manager"))
    refused = client.post(
        "/profiles", json={"platform": "macOS", "name": "Sign\u0000ing", "intended_purpose": "smimeSigning"}
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request")
    assert "NUL character" in refused.json()["errors"][0]["message"]
    assert not Profile.objects.exists()
    found = client.get("/certificates", upn="alice\u0000@contoso.example")
    assert (found.status_code, found.json()["code"]) == (422, "invalid_request")


def test_a_time_with_any_zone_offset_is_read_in_utc(
    make_admin: Callable[..., User], api_as: Callable[..., ApiClient]
) -> None:
    client = api_as(make_admin("intune_administrator"))
    # PostgreSQL refuses offsets beyond 15:59; the API reads the same instant in UTC.
    answer = client.get("/audit-events", since="1267-04-17T06:38:07+18:06", until="2999-01-01T00:00:00-23:59")
    assert answer.status_code == 200, answer.content

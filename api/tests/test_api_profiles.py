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

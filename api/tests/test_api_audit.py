from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from django.db import transaction

from api.tests.conftest import ApiClient
from portal import audit
from portal.audit import Actor
from portal.models import AuditEvent, User

pytestmark = pytest.mark.django_db


def _event(count: int) -> AuditEvent:
    with transaction.atomic():
        return audit.record(
            Actor.system(),
            activity="Import certificates",
            category="Certificates",
            operation=AuditEvent.Operation.CREATE,
            resources=[audit.resource(type="Certificate", id=str(n), name=f"user{n}") for n in range(count)],
        )


def test_a_list_shows_each_events_first_resources_and_the_event_shows_them_all(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    big, small = _event(5), _event(1)
    client = api_as(intune_admin)
    listed = {e["code"]: e for e in client.get("/audit-events", category="Certificates").json()["items"]}
    assert [r["name"] for r in listed[str(big.code)]["resources"]] == ["user0", "user1", "user2"]
    assert listed[str(big.code)]["resource_count"] == 5
    assert listed[str(small.code)]["resource_count"] == 1
    full = client.get(f"/audit-events/{big.code}").json()
    assert [r["name"] for r in full["resources"]] == [f"user{n}" for n in range(5)]


def test_a_list_shows_only_the_objects_among_an_events_first_three_resources(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    mixed = AuditEvent.objects.create(
        actor_name="system",
        activity="Odd resources",
        operation=AuditEvent.Operation.UPDATE,
        category="Tests",
        correlation_id=uuid.uuid4(),
        resources=["text", {"name": "first", "n": 1}, 5, {"name": "fourth"}],
    )
    empty = AuditEvent.objects.create(
        actor_name="system",
        activity="No resources",
        operation=AuditEvent.Operation.UPDATE,
        category="Tests",
        correlation_id=uuid.uuid4(),
        resources=[],
    )
    items = api_as(intune_admin).get("/audit-events", category="Tests").json()["items"]
    listed = {e["code"]: e for e in items}
    assert listed[str(mixed.code)]["resources"] == [{"name": "first", "n": 1}]
    assert listed[str(mixed.code)]["resource_count"] == 4
    assert listed[str(empty.code)]["resources"] == []
    assert listed[str(empty.code)]["resource_count"] == 0


def test_audit_events_page_newest_first_and_filter_by_actor(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    for _ in range(3):
        _event(1)
    client = api_as(intune_admin, name="auditor")
    first = client.get("/audit-events", limit=2, actor="PFX Portal").json()
    second = client.get("/audit-events", limit=2, actor="PFX Portal", cursor=first["next_cursor"]).json()
    codes = [e["code"] for e in first["items"] + second["items"]]
    assert len(codes) == len(set(codes)) == 3
    assert second["next_cursor"] is None
    assert client.get("/audit-events/00000000-0000-0000-0000-000000000000").status_code == 404


def test_an_admin_without_audit_read_gets_no_events(
    make_admin: Callable[..., User], api_as: Callable[..., ApiClient]
) -> None:
    _event(1)
    response = api_as(make_admin()).get("/audit-events")
    assert (response.status_code, response.json()["code"]) == (403, "forbidden")

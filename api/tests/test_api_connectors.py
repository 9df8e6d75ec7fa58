"""The connector list: each connector the caller may see, with its health as the connectors page computes it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.utils import timezone

from api.tests.conftest import ApiClient
from connectors import enrolment
from connectors.models import Connector
from portal.audit import Actor
from portal.models import ScopeTag, User

pytestmark = pytest.mark.django_db


def _enrolled(admin: User, name: str) -> Connector:
    secret = enrolment.token_create(Actor.for_user(admin), name=name)[1]
    return enrolment.connector_enroll(token=secret, host_name=name.lower(), version="1.2.0", features=[])[0]


def test_the_connector_list_shows_each_connector_with_its_health(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    connector = _enrolled(intune_admin, "Srv1")
    now = timezone.now()
    [item] = api_as(intune_admin).get("/connectors").json()
    assert item["code"] == str(connector.code)
    assert (item["name"], item["host_name"], item["version"]) == ("Srv1", "srv1", "1.2.0")
    assert item["state"] == connector.state
    assert (item["status"], item["status_reason"]) == (connector.status(now), connector.status_reason(now))


def test_a_token_of_one_scope_tag_lists_only_the_connectors_of_that_tag(
    intune_admin: User,
    make_admin: Callable[..., User],
    make_tag: Callable[[str], ScopeTag],
    api_as: Callable[..., ApiClient],
) -> None:
    paris, berlin = make_tag("Paris"), make_tag("Berlin")
    in_paris, in_berlin = _enrolled(intune_admin, "Paris1"), _enrolled(intune_admin, "Berlin1")
    in_paris.scope_tags.set([paris])
    in_berlin.scope_tags.set([berlin])
    everyone = api_as(intune_admin)
    assert sorted(c["name"] for c in everyone.get("/connectors").json()) == ["Berlin1", "Paris1"]
    reader = api_as(make_admin("read_only_operator", tags=[paris]))
    assert [c["name"] for c in reader.get("/connectors").json()] == ["Paris1"]

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.lib import lean, shapes
from portal.lib.shapes import Shapes
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def _event(actor_name: str, category: str = "Certificates") -> AuditEvent:
    return AuditEvent.objects.create(
        actor_name=actor_name,
        activity="Test",
        operation=AuditEvent.Operation.CREATE,
        category=category,
        correlation_id=uuid.uuid4(),
    )


def _names(v: Mapping[str, Any]) -> QuerySet[Any]:
    rows = AuditEvent.objects.order_by("pk")
    if "category" in v:
        rows = rows.filter(category=v["category"])
    if "actor" in v:
        rows = rows.filter(actor_name__icontains=v["actor"])
    if "after" in v:
        rows = rows.filter(pk__gt=v["after"])
    if "since" in v:
        rows = rows.filter(occurred_at__gte=v["since"])
    if "code" in v:
        rows = rows.filter(code=v["code"])
    return rows.values_list("actor_name")


def test_a_shape_is_compiled_once_and_each_call_binds_its_own_values(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _event("alice", "Certificates"), _event("bob", "Profiles")
    compiled: list[object] = []
    real = lean._compile

    def counted(*args: Any) -> Any:
        compiled.append(args)
        return real(*args)

    monkeypatch.setattr(shapes, "_compile", counted)
    listed = Shapes("test.bind")

    assert listed.rows("k", _names, {"category": "Certificates"}) == [("alice",)]
    assert listed.rows("k", _names, {"category": "Profiles"}) == [("bob",)]
    assert listed.rows("k", _names, {"category": "Profiles", "after": second.pk}) == []
    assert listed.rows("k", _names, {"category": "Certificates", "after": first.pk - 1}) == [("alice",)]
    assert len(compiled) == 2  # one per set of values present


def test_a_text_inside_a_like_pattern_is_escaped_as_the_orm_escapes_it() -> None:
    _event("50% off_sale"), _event("500 offXsale")
    listed = Shapes("test.like")

    assert listed.rows("k", _names, {"actor": "0% OFF_"}) == [("50% off_sale",)]
    assert listed.rows("k", _names, {"actor": "off"}) == [("50% off_sale",), ("500 offXsale",)]


def test_times_and_uuids_are_bound_as_the_database_stores_them() -> None:
    event = _event("carol")
    listed = Shapes("test.types")

    assert listed.rows("k", _names, {"since": timezone.now() - timedelta(hours=1)}) == [("carol",)]
    assert listed.rows("k", _names, {"since": timezone.now() + timedelta(hours=1)}) == []
    assert listed.rows("k", _names, {"code": event.code}) == [("carol",)]
    assert listed.rows("k", _names, {"code": uuid.uuid4()}) == []


def test_a_shape_that_can_match_nothing_runs_no_query() -> None:
    _event("dan")
    listed = Shapes("test.none")

    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            rows = listed.rows("k", lambda v: _names(v).none(), {"category": "Certificates"})
        assert rows == []
        assert len(queries) == 0


def test_a_value_the_query_does_not_use_is_refused() -> None:
    with pytest.raises(ValueError, match="does not use"):
        Shapes("test.unused").rows("k", lambda v: _names({}), {"category": "Certificates"})

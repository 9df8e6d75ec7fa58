from __future__ import annotations

import uuid

import pytest
from django.db.models import Model

from portal.lib import lean
from portal.models import AuditEvent, Role, User

pytestmark = pytest.mark.django_db


def _fields(obj: object, model: type[Model]) -> dict[str, object]:
    return {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields}


_EVENTS = lean.Query(
    lambda activity, first: (
        AuditEvent.objects.select_related("actor").filter(activity=activity, pk__gte=first).order_by("pk")
    ),
    str,
    int,
)
_NAMES = lean.Query(
    lambda activity: AuditEvent.objects.filter(activity=activity).order_by("pk").only("actor_name", "actor"),
    str,
)
_FLAT = lean.Query(
    lambda activity: AuditEvent.objects.filter(activity=activity).order_by("pk").values_list("pk", flat=True),
    str,
)
_PAIRS = lean.Query(
    lambda name: Role.objects.filter(name=name).values_list("name", "permissions"),
    str,
)


def _events() -> tuple[User, list[AuditEvent]]:
    admin = User.objects.create_user(email="query@contoso.example", password="x" * 16, display_name="Query")
    events = [
        AuditEvent.objects.create(
            actor=admin if i % 2 == 0 else None,
            actor_name=f"actor {i}",
            activity="Lean query",
            operation="action",
            category="Test",
            correlation_id=uuid.uuid4(),
            resources=[{"n": i}],
        )
        for i in range(3)
    ]
    return admin, events


def test_rows_with_their_related_rows_are_those_the_orm_reads_for_each_value() -> None:
    admin, events = _events()
    for first in (events[0].pk, events[1].pk, events[2].pk + 1):
        expected = list(
            AuditEvent.objects.select_related("actor")
            .filter(activity="Lean query", pk__gte=first)
            .order_by("pk")
        )
        found = _EVENTS.rows("Lean query", first)
        assert [_fields(e, AuditEvent) for e in found] == [_fields(e, AuditEvent) for e in expected]
        assert [e.actor and _fields(e.actor, User) for e in found] == [
            e.actor and _fields(e.actor, User) for e in expected
        ]
        assert all(not e._state.adding and e._state.db == "default" for e in found)
    assert _EVENTS.first("Another activity", 0) is None
    earliest = _EVENTS.first("Lean query", 0)
    assert earliest is not None and earliest.actor is not None and earliest.actor.pk == admin.pk


def test_only_leaves_the_other_fields_deferred_and_values_lists_come_as_the_orm_gives_them() -> None:
    _admin, events = _events()
    found = _NAMES.rows("Lean query")
    assert [e.actor_name for e in found] == ["actor 0", "actor 1", "actor 2"]
    assert (
        found[0].get_deferred_fields()
        == AuditEvent.objects.only("actor_name", "actor")[0].get_deferred_fields()
    )
    assert _FLAT.rows("Lean query") == [e.pk for e in events]
    Role.objects.create(name="Lean pair", permissions=["certificates.read"])
    assert _PAIRS.rows("Lean pair") == [("Lean pair", ["certificates.read"])]


def test_a_query_that_does_not_use_a_parameter_as_it_is_is_refused() -> None:
    with pytest.raises(ValueError):
        lean.Query(lambda _name: Role.objects.filter(name="x"), str).rows("x")
    with pytest.raises(ValueError):
        lean.Query(lambda name: Role.objects.filter(name__startswith=name), str).rows("x")
    with pytest.raises(ValueError):
        lean.Query(lambda name: Role.objects.filter(name=name), bytes)


def test_an_update_writes_the_values_and_a_guarded_one_only_while_the_field_is_below() -> None:
    admin = User.objects.create_user(email="update@contoso.example", password="x" * 16, display_name="Update")
    assert lean.update(User, admin.pk, {"display_name": "Renamed"}) == 1
    admin.refresh_from_db()
    assert admin.display_name == "Renamed"
    role = Role.objects.create(name="Lean update", permissions=[])
    assert lean.update(Role, role.pk, {"name": "Lean updated"}, below=("id", role.pk + 1)) == 1
    assert lean.update(Role, role.pk, {"name": "Not this"}, below=("id", role.pk)) == 0
    role.refresh_from_db()
    assert role.name == "Lean updated"
    assert lean.update(Role, role.pk + 1000, {"name": "Nobody"}) == 0

from __future__ import annotations

import pytest
from django.db.models import Model

from portal.lib.lean import Prepared
from portal.models import Role

pytestmark = pytest.mark.django_db


def _fields(obj: object, model: type[Model]) -> dict[str, object]:
    return {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields}


_FROM = Prepared(lambda first: Role.objects.filter(pk__gte=first, name__startswith="Prep").order_by("-name"))
_NAMES = Prepared(
    lambda first: (
        Role.objects.filter(pk__gte=first, name__startswith="Prep")
        .order_by("name")
        .values_list("name", "permissions")
    )
)


def _roles() -> list[Role]:
    return [Role.objects.create(name=f"Prep {i}", permissions=[f"certificates.read{i}"]) for i in range(3)]


def test_rows_are_the_rows_the_orm_reads_field_for_field_and_in_its_order_for_each_value() -> None:
    roles = _roles()
    for first in (roles[0].pk, roles[1].pk, roles[2].pk + 1):
        expected = list(Role.objects.filter(pk__gte=first, name__startswith="Prep").order_by("-name"))
        found = _FROM.rows(first)
        assert [_fields(r, Role) for r in found] == [_fields(r, Role) for r in expected]
        assert all(not r._state.adding and r._state.db == "default" for r in found)
    assert [r.name for r in _FROM.rows(roles[1].pk)] == ["Prep 2", "Prep 1"]


def test_values_list_rows_are_tuples_converted_as_the_orm_does() -> None:
    roles = _roles()
    assert _NAMES.rows(roles[1].pk) == [
        ("Prep 1", ["certificates.read1"]),
        ("Prep 2", ["certificates.read2"]),
    ]
    assert _NAMES.rows(roles[2].pk + 1) == []


def test_a_query_that_does_not_use_its_value_or_reads_related_rows_is_refused() -> None:
    with pytest.raises(ValueError):
        Prepared(lambda _first: Role.objects.filter(name="x")).rows(1)
    with pytest.raises(ValueError):
        Prepared(lambda first: Role.objects.filter(pk=first).only("name")).rows(1)

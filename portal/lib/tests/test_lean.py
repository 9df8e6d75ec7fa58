from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext

from portal.lib import lean
from portal.models import Role, User

pytestmark = pytest.mark.django_db


def _fields(obj: object, model: type[Model]) -> dict[str, object]:
    return {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields}


def test_a_row_read_by_primary_key_is_the_row_the_orm_reads_field_for_field() -> None:
    admin = User.objects.create_user(email="lean@contoso.example", password="x" * 16, display_name="Lean")
    found = lean.get(User, "pk", admin.pk)
    assert found is not None
    assert _fields(found, User) == _fields(User.objects.get(pk=admin.pk), User)
    assert found.date_joined.tzinfo is not None
    assert not found._state.adding and found._state.db == "default"
    # A primary key read from a session is text.
    again = lean.get(User, "pk", str(admin.pk))
    assert again is not None and again.pk == admin.pk


def test_a_row_read_by_a_unique_uuid_field_converts_every_column_as_the_orm_does() -> None:
    role = Role.objects.create(name="Lean readers", permissions=["certificates.read"])
    found = lean.get(Role, "code", role.code)
    assert found is not None
    assert _fields(found, Role) == _fields(Role.objects.get(pk=role.pk), Role)
    assert found.permissions == ["certificates.read"]
    assert isinstance(found.code, uuid.UUID)
    by_text = lean.get(Role, "code", str(role.code))
    assert by_text is not None and by_text.pk == role.pk


def test_a_missing_row_is_none_and_each_read_is_one_query() -> None:
    admin = User.objects.create_user(email="one@contoso.example", password="x" * 16)
    lean.get(User, "pk", admin.pk)
    with CaptureQueriesContext(connection) as queries:
        assert lean.get(User, "pk", admin.pk + 1000) is None
        assert lean.get(User, "pk", admin.pk) is not None
    assert len(queries) == 2

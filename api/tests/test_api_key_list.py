"""The list of encryption keys, written from column values, is byte for byte what its schema writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from ninja.responses import NinjaJSONEncoder

from api.routes.keys import key_out
from api.tests.conftest import ApiClient
from certs.models import EncryptionKey
from certs.tests.importing import add_key
from portal.models import ScopeTag, User

pytestmark = pytest.mark.django_db


def test_the_list_of_keys_is_what_its_schema_writes_byte_for_byte(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    proven = add_key("First")
    EncryptionKey.objects.filter(pk=proven.pk).update(possession_proven_at=datetime(2026, 1, 2, tzinfo=UTC))
    other = EncryptionKey.objects.create(
        provider_name="Microsoft Software Key Storage Provider",
        key_name="Second",
        size=4096,
        fingerprint="ab" * 32,
        public_key_pem=proven.public_key_pem,
    )
    other.scope_tags.set([ScopeTag.default()])

    answer = api_as(intune_admin).get("/encryption-keys")

    assert answer["Content-Type"] == "application/json; charset=utf-8"
    keys = list(EncryptionKey.objects.all())
    assert len(keys) == 2
    expected = json.dumps([key_out(k).model_dump() for k in keys], cls=NinjaJSONEncoder).encode()
    assert answer.content == expected
    assert [k["possession_proven"] for k in answer.json()] == [k.possession_proven for k in keys]

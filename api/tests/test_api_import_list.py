"""The list of imports, written from column values, is byte for byte what its schema writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from ninja.responses import NinjaJSONEncoder

from api.schemas import ImportPage, ImportSummaryOut
from api.tests.conftest import ApiClient
from certs.models import ImportBatch
from certs.tests.importing import add_key
from portal.models import ScopeTag, User

pytestmark = pytest.mark.django_db


def _summary(batch: ImportBatch) -> ImportSummaryOut:
    return ImportSummaryOut(
        code=batch.code,
        kind=batch.kind,
        state=batch.state,
        dry_run=batch.dry_run,
        on_duplicate=batch.on_duplicate,
        encryption_key=batch.encryption_key.code,
        total=batch.total,
        created_by=batch.created_by_name,
        created_at=batch.created_at,
        finished_at=batch.finished_at,
        promoted_from=batch.promoted_from.code if batch.promoted_from else None,
    )


def test_the_list_of_imports_is_what_its_schema_writes_byte_for_byte_page_after_page(
    intune_admin: User, api_as: Callable[..., ApiClient]
) -> None:
    key = add_key()
    dry = ImportBatch.objects.create(
        kind=ImportBatch.Kind.BULK,
        dry_run=True,
        encryption_key=key,
        total=3,
        created_by_name="alice@contoso.example",
        state=ImportBatch.State.DONE,
        finished_at=datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC),
    )
    real = ImportBatch.objects.create(
        kind=ImportBatch.Kind.BULK,
        encryption_key=key,
        total=3,
        created_by_name="Bjørn <bjorn@contoso.example>",
        promoted_from=dry,
    )
    for batch in (dry, real):
        batch.scope_tags.set([ScopeTag.default()])
    client = api_as(intune_admin)

    first = client.get("/imports", limit=1)
    second = client.get("/imports", limit=1, cursor=first.json()["next_cursor"])

    assert first["Content-Type"] == "application/json; charset=utf-8"
    expected = ImportPage(items=[_summary(real)], next_cursor=str(real.pk))
    assert first.content == json.dumps(expected.model_dump(), cls=NinjaJSONEncoder).encode()
    expected = ImportPage(items=[_summary(dry)], next_cursor=None)
    assert second.content == json.dumps(expected.model_dump(), cls=NinjaJSONEncoder).encode()

"""The import pipeline's bulk statements, on the database the tests run on (SQLite, or PostgreSQL
with DATABASE_URL): each writes and reads every column of the model as the ORM does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Field, Model
from django.utils import timezone

from certs import sql
from certs.models import Certificate, EncryptionKey, ImportBatch, ImportItem, ItemState
from certs.tests.importing import directory_user
from portal.models import ScopeTag

pytestmark = pytest.mark.django_db

WHEN = datetime(2031, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)


def _key() -> EncryptionKey:
    return EncryptionKey.objects.create(
        provider_name="P", key_name=f"K-{uuid.uuid4()}", size=2048, fingerprint=uuid.uuid4().hex * 2
    )


def _batch(key: EncryptionKey | None = None) -> ImportBatch:
    return ImportBatch.objects.create(kind=ImportBatch.Kind.BULK, encryption_key=key or _key())


def _certificate(upn: str = "alice@contoso.example", thumbprint: str = "A" * 40) -> Certificate:
    user = directory_user(upn)
    return Certificate.objects.create(
        user=user,
        upn=upn,
        thumbprint=thumbprint,
        subject="CN=x",
        issuer="CN=ca",
        serial="01",
        not_before=WHEN - timedelta(days=365),
        not_after=WHEN,
        key_type="rsa",
        encryption_key=_key(),
        padding="oaepSha512",
        pfx_blob=b"pfx",
        encrypted_password=b"enc",
    )


def _sample(model: type[Model], field: Field[Any, Any], related: dict[str, Any]) -> Any:
    """A value for ``field`` unlike its default, so a column the statement drops or mixes up shows."""
    if field.name in related:
        return related[field.name]
    kind = field.get_internal_type()
    if field.choices:
        return [value for value, _ in field.flatchoices][-1]
    samples: dict[str, Any] = {
        "CharField": f"{field.name}-é"[: field.max_length],
        "BooleanField": True,
        "BinaryField": bytes(range(256)) + field.name.encode(),
        "JSONField": [{"code": field.name, "n": 1}],
        "UUIDField": uuid.uuid5(uuid.NAMESPACE_URL, field.name),
        "DateTimeField": WHEN,
        "PositiveIntegerField": 4_000_000,
        "PositiveSmallIntegerField": 7,
        "IntegerField": 11,
    }
    if kind not in samples:
        raise AssertionError(f"no sample value for {model.__name__}.{field.name} ({kind}): add one")
    return samples[kind]


def _read(model: type[Model], field: Field[Any, Any], obj: Model) -> Any:
    value = getattr(obj, field.attname)
    return bytes(value) if isinstance(value, memoryview) else value


def _table_columns(model: type[Model]) -> set[str]:
    with connection.cursor() as cursor:
        return {c.name for c in connection.introspection.get_table_description(cursor, model._meta.db_table)}


def test_a_new_item_is_written_with_every_column_of_its_table_but_the_id_and_database_defaults() -> None:
    written = {f.column for f in sql.ITEM_INSERT_FIELDS}
    by_database = {f.column for f in ImportItem._meta.concrete_fields if f.has_db_default()}
    assert by_database == {"queued_at", "lost_claims"}
    assert written | by_database | {"id"} == _table_columns(ImportItem)
    assert not written & (by_database | {"id"})


def test_the_copied_and_result_fields_are_fields_of_an_import_item() -> None:
    names = {f.name for f in ImportItem._meta.concrete_fields}
    assert set(sql.ITEM_COPIED_FIELDS) <= names
    assert set(sql.ITEM_RESULT_FIELDS) <= names


def test_inserted_items_read_back_with_every_column_as_given_and_the_rest_defaulted() -> None:
    batch = _batch()
    related = {"batch": batch.pk, "certificate": _certificate().pk}
    given = {f.attname: _sample(ImportItem, f, related) for f in sql.ITEM_INSERT_FIELDS}
    given.pop("batch_id")
    plain = {"position": 1, "filename": "plain.pfx", "pfx": b"file"}

    ids = sql.insert_items(batch.pk, [{**given, "position": 0}, plain])

    first, second = (ImportItem.objects.get(pk=pk) for pk in ids)
    assert (first.position, second.position) == (0, 1)
    for field in sql.ITEM_INSERT_FIELDS:
        expected = batch.pk if field.name == "batch" else {**given, "position": 0}[field.attname]
        assert _read(ImportItem, field, first) == expected, field.name
    fresh = ImportItem(batch=batch, position=1, filename="plain.pfx", pfx=b"file")
    for field in sql.ITEM_INSERT_FIELDS:
        assert _read(ImportItem, field, second) == _read(ImportItem, field, fresh), field.name
    assert second.lost_claims == 0 and second.queued_at is not None


def test_a_row_naming_a_column_that_is_not_written_is_refused() -> None:
    batch = _batch()
    with pytest.raises(TypeError, match="lost_claims"), transaction.atomic():
        sql.insert_items(batch.pk, [{"position": 0, "filename": "a.pfx", "lost_claims": 2}])
    assert not ImportItem.objects.exists()


def test_copied_items_keep_their_files_and_start_again_as_new_rows() -> None:
    dry, real = _batch(), _batch()
    related = {"batch": dry.pk, "certificate": _certificate().pk}
    given = {f.attname: _sample(ImportItem, f, related) for f in sql.ITEM_INSERT_FIELDS}
    given.pop("batch_id")
    sql.insert_items(dry.pk, [given])

    sql.copy_items(dry.pk, real.pk)

    original = ImportItem.objects.get(batch=dry)
    copy = ImportItem.objects.get(batch=real)
    fresh = ImportItem(batch=real)
    for field in sql.ITEM_INSERT_FIELDS:
        if field.name == "batch":
            continue
        expected = original if field.name in sql.ITEM_COPIED_FIELDS else fresh
        assert _read(ImportItem, field, copy) == _read(ImportItem, field, expected), field.name
    assert copy.state == ItemState.QUEUED and copy.staged_password is None


def test_a_claim_reads_every_column_as_the_orm_does_and_counts_a_taken_over_claim_as_lost() -> None:
    batch = _batch()
    related = {"batch": batch.pk, "certificate": _certificate().pk}
    given = {f.attname: _sample(ImportItem, f, related) for f in sql.ITEM_INSERT_FIELDS}
    given.pop("batch_id")
    row = {**given, "done": False, "claim": None, "claimed_at": None}
    expired = {**row, "position": 1, "claim": uuid.uuid4(), "claimed_at": WHEN - timedelta(days=9999)}
    held = {**row, "position": 2, "claim": uuid.uuid4(), "claimed_at": timezone.now()}
    ids = sql.insert_items(batch.pk, [{**row, "position": 0}, expired, held])
    claim, now = uuid.uuid4(), timezone.now()

    items = sql.claim_items(batch.pk, ids, claim, now)

    assert [item.pk for item in items] == ids[:2]
    for item in items:
        stored = ImportItem.objects.get(pk=item.pk)
        for field in ImportItem._meta.concrete_fields:
            assert _read(ImportItem, field, item) == _read(ImportItem, field, stored), field.name
        assert (item.claim, item.claimed_at) == (claim, now)
    assert [item.lost_claims for item in items] == [0, 1]
    assert sql.claim_items(batch.pk, ids, uuid.uuid4(), now) == []


def test_results_are_written_for_every_result_column_of_the_rows_still_held() -> None:
    batch = _batch()
    ids = sql.insert_items(
        batch.pk,
        [
            {"position": p, "filename": f"{p}.pfx", "pfx": b"file", "staged_password": b"sealed"}
            for p in range(3)
        ],
    )
    items = sql.claim_items(batch.pk, ids, uuid.uuid4(), timezone.now())
    certificate = _certificate()
    related = {"certificate": certificate}
    for item in items:
        for name in sql.ITEM_RESULT_FIELDS:
            field = ImportItem._meta.get_field(name)
            setattr(item, name, _sample(ImportItem, field, related))  # type: ignore[arg-type]
    # Another worker took the last row over: nothing is written to it.
    ImportItem.objects.filter(pk=ids[2]).update(claim=uuid.uuid4())
    now = timezone.now()

    sql.write_results(items, keep_files={ids[0]}, keep_staged=False, now=now)

    kept, dropped, taken = (ImportItem.objects.get(pk=pk) for pk in ids)
    for written in (kept, dropped):
        for name in sql.ITEM_RESULT_FIELDS:
            field = ImportItem._meta.get_field(name)
            expected = _sample(ImportItem, field, {"certificate": certificate.pk})  # type: ignore[arg-type]
            assert _read(ImportItem, field, written) == expected, name  # type: ignore[arg-type]
        assert (written.done, written.claim, written.finished_at, written.attempts) == (True, None, now, 1)
        assert written.staged_password is None
    assert bytes(kept.pfx) == b"file" and bytes(dropped.pfx) == b""
    assert (taken.done, taken.state, taken.attempts, bytes(taken.staged_password or b"")) == (
        False,
        ItemState.QUEUED,
        0,
        b"sealed",
    )


def test_a_dry_run_keeps_its_staged_passwords_when_its_results_are_written() -> None:
    batch = _batch()
    ids = sql.insert_items(batch.pk, [{"position": 0, "filename": "a.pfx", "staged_password": b"sealed"}])
    items = sql.claim_items(batch.pk, ids, uuid.uuid4(), timezone.now())
    items[0].state = ItemState.VALIDATED

    sql.write_results(items, keep_files=set(ids), keep_staged=True, now=timezone.now())

    item = ImportItem.objects.get()
    assert (item.state, item.done, bytes(item.staged_password or b"")) == (
        ItemState.VALIDATED,
        True,
        b"sealed",
    )


def test_new_certificates_are_inserted_with_every_column_and_get_their_ids() -> None:
    key, user = _key(), directory_user("bob@contoso.example")
    batch = _batch(key)
    related = {"user": user.pk, "encryption_key": key.pk, "batch": batch.pk}
    fields = [f for f in Certificate._meta.concrete_fields if not f.primary_key]
    values = [
        {f.attname: _sample(Certificate, f, related) for f in fields}
        | {"thumbprint": f"{n}" * 40, "code": uuid.uuid4()}
        for n in (1, 2)
    ]
    new = [Certificate(**v) for v in values]

    sql.insert_certificates(new)

    assert all(c.pk is not None and not c._state.adding for c in new)
    for cert, expected in zip(new, values, strict=True):
        stored = Certificate.objects.get(pk=cert.pk)
        for field in fields:
            assert _read(Certificate, field, stored) == expected[field.attname], field.name
    # Saved rows, usable at once (the scope tags go in right after, in the pipeline).
    new[0].scope_tags.add(ScopeTag.default())
    assert Certificate.scope_tags.through.objects.filter(certificate_id=new[0].pk).count() == 1


def test_certificates_of_users_are_found_by_upn_whatever_its_case() -> None:
    alice = _certificate("Alice@Contoso.example", "A" * 40)
    _certificate("bob@contoso.example", "B" * 40)

    found = list(sql.certificates_of_users({"alice@contoso.example", "nobody@contoso.example"}))

    assert [c.pk for c in found] == [alice.pk]
    assert "pfx_blob" in found[0].get_deferred_fields()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite runs one writing transaction at a time")
def test_one_transaction_lock_is_held_per_public_key_until_the_commit() -> None:
    def advisory_locks() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
            return int(cursor.fetchone()[0])

    before = advisory_locks()
    sql.lock_public_keys(["a" * 64, "b" * 64, "a" * 64, ""])
    assert advisory_locks() == before + 2

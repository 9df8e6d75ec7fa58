"""The import pipeline's bulk statements and their PostgreSQL fast paths.

Column names and PostgreSQL types come from the models' metadata, so a field added to
``ImportItem`` or ``Certificate`` is written and read here without editing a column list.
On PostgreSQL the heavy statements bind their parameters on the server, so files travel as
binary rather than as escaped text in the SQL (as text, hex-escaping a chunk's files costs more
than the statement); elsewhere (SQLite) they go through the ORM or one portable statement.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Case, F, Field, IntegerField, Model, Q, When
from django.db.models.functions import Lower

from certs.models import Certificate, ImportItem, stale_claim_cutoff

# The columns a new import item is written with: every column but the id and those the
# database fills itself (``db_default``).
ITEM_INSERT_FIELDS: tuple[Field[Any, Any], ...] = tuple(
    f for f in ImportItem._meta.concrete_fields if not f.primary_key and not f.has_db_default()
)

# What a dry run hands to its promotion: the files and where they go. The rest of a promoted
# row is that of a new row; its staged password is sealed again by the caller.
ITEM_COPIED_FIELDS = ("position", "filename", "upn", "purpose", "pfx")

# What processing a row decides, written back for a whole chunk at once.
ITEM_RESULT_FIELDS = (
    "state",
    "upn",
    "problem_code",
    "problem_message",
    "warnings",
    "thumbprint",
    "subject",
    "not_after",
    "certificate",
)


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _quoted(field: Field[Any, Any]) -> str:
    return connection.ops.quote_name(field.column or field.attname)


def _column(model: type[Model], name: str) -> str:
    return _quoted(model._meta.get_field(name))  # type: ignore[arg-type]


def _fields(model: type[Model], names: Iterable[str]) -> list[Field[Any, Any]]:
    return [model._meta.get_field(name) for name in names]  # type: ignore[misc]


def postgresql_type(field: Field[Any, Any]) -> str:
    """The field's PostgreSQL type without its modifier (``varchar(255)`` is ``varchar``): a cast or
    a COPY column type. A foreign key has the type of the key it points to."""
    return re.sub(r"\(.*\)", "", field.db_type(connection) or "")


def _server_cursor() -> Any:
    """A cursor of the PostgreSQL connection that binds parameters on the server, inside the
    current transaction."""
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _value(obj: Model, field: Field[Any, Any]) -> Any:
    """What ``save()`` would write for ``field``: a related object assigned before it had an id
    is written with the id it has now (read from the cache, without a query)."""
    if field.is_relation and field.is_cached(obj):  # type: ignore[attr-defined]
        related = field.get_cached_value(obj)  # type: ignore[attr-defined]
        return related.pk if related is not None else None
    return getattr(obj, field.attname)


# Fields whose values the database driver takes as they are, when they are of this type.
_PLAIN = {"CharField": str, "TextField": str, "BigAutoField": int, "AutoField": int}


def _adapter(field: Field[Any, Any]) -> Any:
    """A function preparing the field's values for a statement: ``get_db_prep_save`` but for
    strings and ids, which need none (adapting every field of a chunk in Python costs about as
    much as writing it)."""
    plain = _PLAIN.get(field.get_internal_type())
    prepare = field.get_db_prep_save

    def adapt(value: Any) -> Any:
        return value if value is None or type(value) is plain else prepare(value, connection)

    return adapt


def _postgresql_params(field: Field[Any, Any], values: Iterable[Any]) -> list[Any]:
    """A column of values for a server-bound array of the field's type. psycopg adapts Python
    values as they are; JSON goes as text, cast on the server (Django's adapter per value costs
    more than the statement on a chunk)."""
    if field.get_internal_type() == "JSONField":
        encoder = field.encoder  # type: ignore[attr-defined]
        return [None if v is None else json.dumps(v, cls=encoder) for v in values]
    return list(values)


# --- Import items ---------------------------------------------------------------------


def insert_items(batch_id: int, rows: Iterable[Mapping[str, Any]]) -> list[int]:
    """Insert a batch's new items and return their ids by position.

    Each row gives values by attribute name (``position``, ``filename``, ...); the other columns
    take the field's default. On PostgreSQL the rows go in with one binary COPY (10,000 files:
    well under a second, against several seconds of INSERTs); elsewhere with one prepared INSERT
    run for every row (bulk_create builds a model and adapts every field of every row in Python,
    which costs more than the insert). Either way inside the caller's transaction, so a failed
    upload leaves nothing behind.
    """
    fields = ITEM_INSERT_FIELDS
    index = {f.attname: i for i, f in enumerate(fields)}
    postgresql = _postgresql()
    # COPY adapts Python values itself; the portable INSERT gets values prepared as the ORM would.
    # Defaults are the same for every row, so they are prepared once.
    defaults = [f.get_default() for f in fields]
    defaults[index["batch_id"]] = batch_id
    if not postgresql:
        defaults = [f.get_db_prep_save(v, connection) for f, v in zip(fields, defaults, strict=True)]

    def values(row: Mapping[str, Any]) -> list[Any]:
        out = defaults.copy()
        for name, value in row.items():
            if name not in index or name == "batch_id":
                raise TypeError(f"not a column of a new import item: {name}")
            i = index[name]
            out[i] = value if postgresql else fields[i].get_db_prep_save(value, connection)
        return out

    table = _table(ImportItem)
    columns = ", ".join(_quoted(f) for f in fields)
    with connection.cursor() as cursor:
        if postgresql:
            # Binary COPY: the files go as they are, not hex-escaped.
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([postgresql_type(f) for f in fields])
                for row in rows:
                    copy.write_row(values(row))
        else:
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})",
                [values(row) for row in rows],
            )
        cursor.execute(
            f"SELECT {_column(ImportItem, 'id')} FROM {table} WHERE {_column(ImportItem, 'batch')} = %s "
            f"ORDER BY {_column(ImportItem, 'position')}",
            [batch_id],
        )
        return [row[0] for row in cursor.fetchall()]


def copy_items(from_batch_id: int, to_batch_id: int) -> None:
    """Copy a batch's rows into another as new rows, the files copied inside the database."""
    table = _table(ImportItem)
    selected: list[str] = []
    params: list[Any] = []
    for field in ITEM_INSERT_FIELDS:
        if field.name in ITEM_COPIED_FIELDS:
            selected.append(_quoted(field))
            continue
        value = to_batch_id if field.name == "batch" else field.get_default()
        selected.append("%s")
        params.append(field.get_db_prep_save(value, connection))
    columns = ", ".join(_quoted(f) for f in ITEM_INSERT_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {', '.join(selected)} FROM {table} "
            f"WHERE {_column(ImportItem, 'batch')} = %s",
            [*params, from_batch_id],
        )


def claim_items(batch_id: int, item_ids: Sequence[int], claim: uuid.UUID, now: datetime) -> list[ImportItem]:
    """Claim the unfinished rows among ``item_ids`` that are unclaimed or whose claim's lease has
    run out, and read them in position order. Taking over an expired claim counts as a worker lost
    on that row (``lost_claims``)."""
    cutoff = stale_claim_cutoff(now)
    if _postgresql():
        return _claim_postgresql(batch_id, item_ids, claim, now, cutoff)
    claimable = Q(claim__isnull=True) | Q(claimed_at__lt=cutoff)
    lost = Case(
        When(claim__isnull=False, then=F("lost_claims") + 1),
        default=F("lost_claims"),
        output_field=IntegerField(),
    )
    claimed = (
        ImportItem.objects.filter(batch_id=batch_id, pk__in=item_ids, done=False)
        .filter(claimable)
        .update(claim=claim, claimed_at=now, lost_claims=lost)
    )
    if not claimed:
        return []
    # By primary key: ``claim`` has no index, and SQLite would read every row's file to reach it.
    mine = ImportItem.objects.filter(pk__in=item_ids, claim=claim)
    return list(mine.order_by("position"))


def _claim_postgresql(
    batch_id: int, item_ids: Sequence[int], claim: uuid.UUID, now: datetime, cutoff: datetime
) -> list[ImportItem]:
    """Claim and read in one statement (UPDATE ... RETURNING), the files as binary."""
    fields = list(ImportItem._meta.concrete_fields)
    # JSON comes back as text, for the field to decode as a query through the ORM would.
    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    returning = ", ".join(_quoted(f) + ("::text" if f.attname in json_fields else "") for f in fields)
    c = {
        name: _column(ImportItem, name)
        for name in ("id", "batch", "done", "claim", "claimed_at", "lost_claims")
    }
    sql = (
        f"UPDATE {_table(ImportItem)} SET {c['claim']} = %s, {c['claimed_at']} = %s, "
        f"{c['lost_claims']} = {c['lost_claims']} + ({c['claim']} IS NOT NULL)::int "
        f"WHERE {c['batch']} = %s AND {c['id']} = ANY(%s) AND NOT {c['done']} "
        f"AND ({c['claim']} IS NULL OR {c['claimed_at']} < %s) RETURNING {returning}"
    )
    with connection.wrap_database_errors, _server_cursor() as cursor:
        cursor.execute(sql, [claim, now, batch_id, list(item_ids), cutoff], binary=True)
        rows = cursor.fetchall()
    names = [f.attname for f in fields]
    decoded = [(i, f) for i, f in enumerate(fields) if f.attname in json_fields]
    items = []
    for row in rows:
        values = list(row)
        for i, f in decoded:
            values[i] = f.from_db_value(values[i], None, connection)  # type: ignore[attr-defined]
        items.append(ImportItem.from_db(connection.alias, names, values))
    items.sort(key=lambda item: item.position)
    return items


def write_results(
    items: Sequence[ImportItem], *, keep_files: Collection[int], keep_staged: bool, now: datetime
) -> None:
    """Write a chunk's results at once (on PostgreSQL one UPDATE joined to the rows' values).

    Each row gets its ``ITEM_RESULT_FIELDS``, one more attempt, ``done`` and ``finished_at``; its
    claim is released, its file kept only if its id is in ``keep_files``, and its staged password
    destroyed unless ``keep_staged`` (a dry run's, kept for its promotion). Only rows still held
    by the claim they were read with are written. Django's bulk_update builds a CASE per field
    and row, which costs more than the PFX work itself on a chunk.
    """
    if not items:
        return
    ops = connection.ops
    table = _table(ImportItem)
    fields = _fields(ImportItem, ("id", "claim", *ITEM_RESULT_FIELDS))
    names = [_quoted(f) for f in fields]
    keep_file = ops.quote_name("keep_file")
    pfx = ImportItem._meta.get_field("pfx")
    assignments = [f"{name} = v.{name}" for name in names[2:]]
    assignments += [
        f"{_column(ImportItem, 'attempts')} = {table}.{_column(ImportItem, 'attempts')} + 1",
        f"{_column(ImportItem, 'pfx')} = CASE WHEN v.{keep_file} THEN {table}.{_column(ImportItem, 'pfx')} "
        f"ELSE %s END",
        # destroyed on success and on failure alike; a dry run keeps them for its promotion
        *([] if keep_staged else [f"{_column(ImportItem, 'staged_password')} = NULL"]),
        f"{_column(ImportItem, 'claim')} = NULL",
        f"{_column(ImportItem, 'done')} = %s",
        f"{_column(ImportItem, 'finished_at')} = %s",
    ]
    set_params = [
        pfx.get_db_prep_save(b"", connection),
        True,
        ImportItem._meta.get_field("finished_at").get_db_prep_save(now, connection),
    ]
    match_rows = f"{table}.{names[0]} = v.{names[0]} AND {table}.{names[1]} = v.{names[1]}"
    if _postgresql():
        # One array per column, bound on the server: a VALUES list would need a cast per value.
        arrays = ", ".join([*(f"%s::{postgresql_type(f)}[]" for f in fields), "%s::boolean[]"])
        sql = (
            f"UPDATE {table} SET {', '.join(assignments)} "
            f"FROM unnest({arrays}) AS v({', '.join(names)}, {keep_file}) WHERE {match_rows}"
        )
        columns = [_postgresql_params(f, (_value(item, f) for item in items)) for f in fields]
        keep = [item.pk in keep_files for item in items]
        with connection.wrap_database_errors, _server_cursor() as cursor:
            cursor.execute(sql, [*set_params, *columns, keep])
        return
    # Elsewhere (SQLite) one UPDATE by primary key run for every row (executemany): joining a
    # VALUES list costs SQLite more than finding each row by its key.
    pfx_column = _column(ImportItem, "pfx")
    per_row = [f"{name} = %s" for name in names[2:]] + [
        f"{_column(ImportItem, 'attempts')} = {_column(ImportItem, 'attempts')} + 1",
        f"{pfx_column} = CASE WHEN %s THEN {pfx_column} ELSE %s END",
        *([] if keep_staged else [f"{_column(ImportItem, 'staged_password')} = NULL"]),
        f"{_column(ImportItem, 'claim')} = NULL",
        f"{_column(ImportItem, 'done')} = %s",
        f"{_column(ImportItem, 'finished_at')} = %s",
    ]
    adapters = [_adapter(f) for f in fields]
    rows = []
    for item in items:
        key, claim, *results = (adapt(_value(item, f)) for f, adapt in zip(fields, adapters, strict=True))
        rows.append([*results, item.pk in keep_files, *set_params, key, claim])
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET {', '.join(per_row)} WHERE {names[0]} = %s AND {names[1]} = %s", rows
        )


# --- Certificates ---------------------------------------------------------------------


def certificates_of_users(upns: Collection[str]) -> Iterable[Certificate]:
    """The certificates of these users (by lower-case UPN), without their blobs.

    On PostgreSQL one probe of the unique index per UPN, whatever the table's statistics say
    (an IN list on a table growing during a bulk import gets a sequential scan); the thumbprints
    stay out of the condition, which would probe the index once per (UPN, thumbprint) pair.
    """
    certificates = Certificate.objects.defer("pfx_blob", "encrypted_password")
    if not _postgresql():
        return certificates.annotate(upn_lower=Lower("upn")).filter(upn_lower__in=upns)
    pk = _column(Certificate, "id")
    sql = (
        f"SELECT c.{pk} FROM unnest(%s::text[]) AS w(upn) CROSS JOIN LATERAL "
        f"(SELECT {pk} FROM {_table(Certificate)} WHERE lower({_column(Certificate, 'upn')}) = w.upn) AS c"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [sorted(upns)])
        ids = [row[0] for row in cursor.fetchall()]
    return certificates.filter(pk__in=ids) if ids else []


def insert_certificates(new: Sequence[Certificate]) -> None:
    """Insert new certificates and give them their ids. On PostgreSQL: one INSERT from arrays
    bound on the server; elsewhere bulk_create."""
    if not new:
        return
    if not _postgresql():
        Certificate.objects.bulk_create(new)
        return
    fields = [f for f in Certificate._meta.concrete_fields if not f.primary_key]
    for cert in new:
        for f in fields:
            if getattr(cert, f.attname) is None and f.has_default():
                setattr(cert, f.attname, f.get_default())
    columns = ", ".join(_quoted(f) for f in fields)
    # Blobs as binary parameters (%b): as text, hex-escaping 100 files costs more than the INSERT.
    arrays = ", ".join(
        f"%{'b' if f.get_internal_type() == 'BinaryField' else 's'}::{postgresql_type(f)}[]" for f in fields
    )
    values = [[f.get_db_prep_save(_value(c, f), connection) for c in new] for f in fields]
    with connection.wrap_database_errors, _server_cursor() as cursor:
        # Rows come back in the order of the arrays (as with Django's own UNNEST inserts).
        cursor.execute(
            f"INSERT INTO {_table(Certificate)} ({columns}) SELECT * FROM unnest({arrays}) "
            f"RETURNING {_column(Certificate, 'id')}",
            values,
        )
        ids = [row[0] for row in cursor.fetchall()]
    for cert, pk in zip(new, ids, strict=True):
        cert.pk = pk
        cert._state.adding = False
        cert._state.db = connection.alias


def lock_public_keys(fingerprints: Iterable[str]) -> None:
    """On PostgreSQL, hold a transaction lock per public key, so two chunks storing certificates of
    one key pair for different users take turns and the second sees the first's certificate.
    (SQLite runs one writing transaction at a time.)"""
    keys = sorted({int.from_bytes(bytes.fromhex(f[:16]), "big", signed=True) for f in fingerprints if f})
    if not keys or not _postgresql():
        return
    with connection.cursor() as cursor:
        # In one order for every chunk, so two chunks never wait on each other's locks.
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM "
            "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k OFFSET 0) AS ordered",
            [keys],
        )

"""Import batches: start one from a manifest and a ZIP or files (or a dry run), read its rows,
retry failed rows with new passwords, cancel it, import a dry run for real."""

from __future__ import annotations

import uuid

from django.db.models import Case, When
from django.http import HttpRequest, HttpResponse
from ninja import File, Form, Query, Router, Status
from ninja.files import UploadedFile

from api import auth, paging, render
from api.auth import needs
from api.columns import SchemaTimeText, UuidText
from api.common import ERRORS, key_for, user
from api.schemas import (
    CountOut,
    ImportDetailOut,
    ImportOut,
    ImportPage,
    ImportRowOut,
    ImportSummaryOut,
    Input,
    RetryIn,
)
from certs import imports, manifest
from certs.models import ImportBatch, ImportItem, ItemState, retryable_with_password
from portal import access
from portal.audit import Actor
from portal.lib.refusal import Refused
from portal.lib.shapes import Shapes
from portal.models import User

router = Router(tags=["Imports"])

ROWS_PER_PAGE = 1000


def summary_out(batch: ImportBatch) -> ImportSummaryOut:
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


def import_out(batch: ImportBatch) -> ImportOut:
    counts = imports.batch_counts(batch)
    finished = sum(counts[s] for s in ("stored", "failed", "skipped", "cancelled"))
    if batch.dry_run:
        finished += counts["validated"]
    return ImportOut(**summary_out(batch).dict(), counts=counts, finished=finished)


def row_out(item: ImportItem, *, retryable: bool) -> ImportRowOut:
    """One import row as the API shows it, for a batch's rows and for a single import alike."""
    return ImportRowOut(
        position=item.position,
        filename=item.filename,
        upn=item.upn,
        purpose=item.purpose,
        state=item.state,
        problem_code=item.problem_code,
        problem_message=item.problem_message,
        warnings=[str(w) for w in item.warnings],
        thumbprint=item.thumbprint,
        certificate=item.certificate.code if item.certificate else None,
        retryable=retryable,
    )


# ImportSummaryOut's fields as the schema writes them (codes and times as text), read as columns.
SUMMARY_FIELDS = tuple(ImportSummaryOut.model_fields)
LISTING = paging.listing(
    ImportBatch.objects.all(),
    [
        UuidText("code"),
        "kind",
        "state",
        "dry_run",
        "on_duplicate",
        UuidText("encryption_key__code"),
        "total",
        "created_by_name",
        SchemaTimeText("created_at"),
        SchemaTimeText("finished_at"),
        UuidText("promoted_from__code"),
    ],
    descending=True,
)
SHAPES = Shapes("api.imports")


class ListIn(Input):
    cursor: paging.Cursor = None
    limit: paging.Limit = paging.DEFAULT_LIMIT


@router.get(
    "/imports", response={200: ImportPage, **ERRORS}, summary="List imports", auth=needs("certificates.read")
)
def import_list(request: HttpRequest, query: Query[ListIn]) -> HttpResponse:
    admin = user(request)
    found, cursor = paging.page_shaped(
        SHAPES,
        access.viewer_key(admin),
        lambda v: access.scoped(LISTING.all(), admin),
        {},
        query.cursor,
        query.limit,
        descending=True,
    )
    items = render.rows(SUMMARY_FIELDS, found)
    for item in items:
        item["dry_run"] = bool(item["dry_run"])
    return render.schema_answer({"items": items, "next_cursor": cursor})


class CreateIn(Input):
    dry_run: bool = False
    on_duplicate: ImportBatch.OnDuplicate = ImportBatch.OnDuplicate.SKIP
    encryption_key: uuid.UUID | None = None


def start_import(
    actor: Actor,
    admin: User,
    *,
    manifest_data: bytes,
    uploads: list[tuple[str, bytes]],
    options: CreateIn,
    kind: str = ImportBatch.Kind.BULK,
) -> ImportBatch:
    """A batch from a manifest and a ZIP or loose files, checked as a whole first (as the bulk page)."""
    key = key_for(admin, options.encryption_key)
    if len(uploads) == 1 and uploads[0][0].lower().endswith(".zip"):
        files = manifest.read_zip(uploads[0][1])
    elif uploads:
        files = manifest.read_files(uploads)
    else:
        raise Refused("no_files", "Send the PFX files or one ZIP file.")
    entries = manifest.entries(manifest.read_manifest(manifest_data), files)
    return imports.batch_create(
        actor,
        kind=kind,
        key=key,
        entries=entries,
        tags=access.creator_tags(admin, "certificates"),
        dry_run=options.dry_run,
        on_duplicate=options.on_duplicate,
    )


@router.post(
    "/imports",
    response={201: ImportOut, **ERRORS},
    summary="Start an import",
    auth=needs("certificates.create"),
)
def import_create(
    request: HttpRequest,
    manifest_file: File[UploadedFile],
    files: File[list[UploadedFile]],
    options: Form[CreateIn],
) -> Status[ImportOut]:
    """``manifest_file`` is the CSV (``filename,upn,password,purpose``); ``files`` the PFX files or one
    ZIP. Everything is checked before anything is stored; the workers then import the rows. Poll
    ``GET /imports/{code}`` until ``state`` is no longer ``running``."""
    admin = user(request)
    batch = start_import(
        auth.actor(request),
        admin,
        manifest_data=manifest_file.read(),
        uploads=[(u.name or "", u.read()) for u in files],
        options=options,
    )
    return Status(201, import_out(batch))


class RowsIn(Input):
    state: ItemState | None = None
    cursor: paging.Cursor = None


@router.get(
    "/imports/{code}",
    response={200: ImportDetailOut, **ERRORS},
    summary="An import's status and rows",
    auth=needs("certificates.read"),
)
def import_get(request: HttpRequest, code: uuid.UUID, query: Query[RowsIn]) -> ImportDetailOut:
    """The batch's counts and up to 1,000 rows per page, each with its result and problem code."""
    batch = access.get_for_user(
        user(request), ImportBatch.objects.select_related("encryption_key", "promoted_from"), code=code
    )
    items = (
        ImportItem.objects.filter(batch=batch)
        .defer("pfx", "staged_password")
        .select_related("certificate")
        .only(*ROW_FIELDS, "certificate__code")
        .annotate(retry=Case(When(retryable_with_password(), then=True), default=False))
    )
    if query.state:
        items = items.filter(state=query.state)
    rows, cursor = paging.page(items, query.cursor, ROWS_PER_PAGE)
    return ImportDetailOut(
        **import_out(batch).dict(),
        rows=[row_out(i, retryable=bool(getattr(i, "retry", False))) for i in rows],
        next_cursor=cursor,
    )


ROW_FIELDS = (
    "batch_id",
    "position",
    "filename",
    "upn",
    "purpose",
    "state",
    "problem_code",
    "problem_message",
    "warnings",
    "thumbprint",
    "certificate_id",
)


@router.post(
    "/imports/{code}/cancel",
    response={200: CountOut, **ERRORS},
    summary="Cancel an import",
    auth=needs("certificates.create"),
)
def import_cancel(request: HttpRequest, code: uuid.UUID) -> CountOut:
    batch = access.get_for_user(user(request), ImportBatch.objects.all(), write="create", code=code)
    return CountOut(count=imports.batch_cancel(auth.actor(request), batch=batch))


@router.post(
    "/imports/{code}/retry",
    response={200: CountOut, **ERRORS},
    summary="Retry failed rows",
    auth=needs("certificates.create"),
)
def import_retry(request: HttpRequest, code: uuid.UUID, body: RetryIn) -> CountOut:
    """Queue failed rows again with new passwords, keyed by row ``position``. Only rows a password can
    fix (``retryable``) are taken, and only within the import's retry window."""
    batch = access.get_for_user(user(request), ImportBatch.objects.all(), write="create", code=code)
    by_position = dict(
        batch.items.filter(retryable_with_password(), position__in=list(body.passwords)).values_list(
            "position", "pk"
        )
    )
    passwords = {pk: body.passwords[position] for position, pk in by_position.items()}
    return CountOut(count=imports.items_retry(auth.actor(request), batch=batch, passwords=passwords))


@router.post(
    "/imports/{code}/promote",
    response={201: ImportOut, **ERRORS},
    summary="Import a dry run for real",
    auth=needs("certificates.create"),
)
def import_promote(request: HttpRequest, code: uuid.UUID) -> Status[ImportOut]:
    admin = user(request)
    batch = access.get_for_user(admin, ImportBatch.objects.all(), write="create", code=code)
    key_for(admin, batch.encryption_key.code)
    real = imports.batch_promote(auth.actor(request), batch=batch)
    real = ImportBatch.objects.select_related("encryption_key", "promoted_from").get(pk=real.pk)
    return Status(201, import_out(real))

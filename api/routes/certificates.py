"""Certificates: list with filters and cursor paging, one, import one file now, delete."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import File, Form, Query, Router, Status
from ninja.files import UploadedFile
from pydantic import Field

from api import auth, paging, render
from api.auth import needs
from api.columns import JsonObject, TimeText, UuidText
from api.common import ERRORS, key_for, user
from api.routes.imports import row_out
from api.schemas import CertificateOut, CertificatePage, ImportRowOut, Input
from certs import lifecycle
from certs.imports import Entry
from certs.models import Certificate, ImportBatch, Purpose
from portal import access
from portal.lib.shapes import Shapes

router = Router(tags=["Certificates"])


def certificate_out(c: Certificate) -> CertificateOut:
    return CertificateOut(
        code=c.code,
        upn=c.upn,
        user_object_id=c.user.object_id,
        thumbprint=c.thumbprint,
        purpose=c.purpose,
        subject=c.subject,
        issuer=c.issuer,
        serial=c.serial,
        not_before=c.not_before,
        not_after=c.not_after,
        key_type=c.key_type,
        key_size=c.key_size,
        encryption_key=c.encryption_key.code,
        padding=c.padding,
        import_batch=c.batch.code if c.batch_id and c.batch else None,
        intune_state=c.graph_state,
        intune_error=c.graph_error,
        created_at=c.created_at,
    )


# Answer field -> column, in CertificateOut's order; UUIDs and times read as the answer's text.
COLUMNS: dict[str, Any] = {
    "code": UuidText("code"),
    "upn": "upn",
    "user_object_id": UuidText("user__object_id"),
    "thumbprint": "thumbprint",
    "purpose": "purpose",
    "subject": "subject",
    "issuer": "issuer",
    "serial": "serial",
    "not_before": TimeText("not_before"),
    "not_after": TimeText("not_after"),
    "key_type": "key_type",
    "key_size": "key_size",
    "encryption_key": UuidText("encryption_key__code"),
    "padding": "padding",
    "import_batch": UuidText("batch__code"),
    "intune_state": "graph_state",
    "intune_error": "graph_error",
    "created_at": TimeText("created_at"),
}


LISTING = paging.listing(Certificate.objects.all(), [JsonObject(COLUMNS)])
SHAPES = Shapes("api.certificates")


def certificate_rows(queryset: QuerySet[Certificate]) -> QuerySet[Certificate]:
    """The columns an answer needs, in one query (never the file or the encrypted password)."""
    return queryset.select_related("user", "encryption_key", "batch").only(
        *(
            f.name
            for f in Certificate._meta.concrete_fields
            if f.name not in ("pfx_blob", "encrypted_password")
        ),
        "user__object_id",
        "encryption_key__code",
        "batch__code",
    )


class CertificateFilters(Input):
    upn: str | None = None
    thumbprint: str | None = None
    purpose: Purpose | None = None
    state: Literal["not_uploaded", "pending", "synced", "failed", "expired", "valid"] | None = None
    expires_within_days: Annotated[int | None, Field(default=None, ge=0, le=3650)] = None
    import_batch: uuid.UUID | None = None
    cursor: paging.Cursor = None
    limit: paging.Limit = paging.DEFAULT_LIMIT


@router.get(
    "/certificates",
    response={200: CertificatePage, **ERRORS},
    summary="List certificates",
    auth=needs("certificates.read"),
)
def certificate_list(request: HttpRequest, filters: Query[CertificateFilters]) -> HttpResponse:
    """Certificates the caller may see, oldest first; filter by user, purpose, state (an Intune state,
    ``expired`` or ``valid``), expiry window (days from now) or import batch."""
    admin = user(request)
    values: dict[str, Any] = {}
    if filters.upn:
        values["upn"] = filters.upn.strip().lower()
    if filters.thumbprint:
        values["thumbprint"] = filters.thumbprint.strip().lower()
    if filters.purpose:
        values["purpose"] = str(filters.purpose)
    if filters.state in ("expired", "valid") or filters.expires_within_days is not None:
        values["now"] = timezone.now()
    if filters.state and filters.state not in ("expired", "valid"):
        values["state"] = filters.state
    if filters.expires_within_days is not None:
        values["until"] = values["now"] + timedelta(days=filters.expires_within_days)
    if filters.import_batch:
        values["batch"] = filters.import_batch
    state = filters.state if filters.state in ("expired", "valid") else None
    key = (access.viewer_key(admin), state, filters.limit)

    def build(v: Mapping[str, Any]) -> QuerySet[Any]:
        rows = access.scoped(LISTING.all(), admin)
        if "upn" in v:
            rows = rows.alias(upn_lower=Lower("upn")).filter(upn_lower=v["upn"])
        if "thumbprint" in v:
            rows = rows.filter(thumbprint=v["thumbprint"])
        if "purpose" in v:
            rows = rows.filter(purpose=v["purpose"])
        if state == "expired":
            rows = rows.filter(not_after__lte=v["now"])
        elif state == "valid":
            rows = rows.filter(not_after__gt=v["now"])
        if "state" in v:
            rows = rows.filter(graph_state=v["state"])
        if "until" in v:
            rows = rows.filter(not_after__gt=v["now"], not_after__lte=v["until"])
        if "batch" in v:
            rows = rows.filter(batch__code=v["batch"])
        return rows

    def answer() -> str:
        found, cursor = paging.page_shaped(SHAPES, key, build, values, filters.cursor, filters.limit)
        return render.page_text([row[0] for row in found], cursor)

    return render.kept_json(request, "certificates", answer)


@router.get(
    "/certificates/{code}",
    response={200: CertificateOut, **ERRORS},
    summary="Get a certificate",
    auth=needs("certificates.read"),
)
def certificate_get(request: HttpRequest, code: uuid.UUID) -> CertificateOut:
    certificate = access.get_for_user(user(request), certificate_rows(Certificate.objects.all()), code=code)
    return certificate_out(certificate)


@router.delete(
    "/certificates/{code}",
    response={204: None, **ERRORS},
    summary="Delete a certificate",
    auth=needs("certificates.delete"),
)
def certificate_delete(request: HttpRequest, code: uuid.UUID) -> Status[None]:
    """Deletes the certificate here, and its copy in Intune (after the change commits)."""
    certificate = access.get_for_user(user(request), Certificate.objects.all(), write="delete", code=code)
    lifecycle.certificate_delete(auth.actor(request), certificate=certificate)
    return Status(204, None)


class SingleImportIn(Input):
    upn: str = ""
    purpose: Purpose = Purpose.UNASSIGNED
    encryption_key: uuid.UUID | None = None
    on_duplicate: ImportBatch.OnDuplicate = ImportBatch.OnDuplicate.SKIP


@router.post(
    "/certificates",
    response={200: ImportRowOut, **ERRORS},
    summary="Import one PFX file now",
    auth=needs("certificates.create"),
)
def certificate_import(
    request: HttpRequest,
    file: File[UploadedFile],
    password: Form[str],
    options: Form[SingleImportIn],
) -> ImportRowOut:
    """Imports one file in this request (its password never leaves it) and answers the row's result:
    ``stored``, ``skipped`` or ``failed`` with the problem code."""
    admin = user(request)
    key = key_for(admin, options.encryption_key)
    entry = Entry(
        filename=file.name or "upload.pfx",
        data=file.read(),
        password=password,
        upn=options.upn,
        purpose=options.purpose,
    )
    item = lifecycle.certificate_import(
        auth.actor(request),
        entry=entry,
        key=key,
        tags=access.creator_tags(admin, "certificates"),
        on_duplicate=options.on_duplicate,
    )
    return row_out(item, retryable=item.retryable)

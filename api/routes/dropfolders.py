"""Drop folders of unattended imports, and the push of a set to one (what a CA's export job calls)."""

from __future__ import annotations

import uuid
from typing import Annotated

from django.http import HttpRequest
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from api import auth, dropfolder
from api.auth import needs
from api.common import ERRORS, key_for, user
from api.models import DropFolder, DropSet
from api.schemas import Input
from certs.models import ImportBatch
from portal import access
from portal.lib.refusal import Refused

router = Router(tags=["Drop folders"])


class DropFolderOut(Schema):
    code: uuid.UUID
    name: str
    directory: str
    path: str
    encryption_key: uuid.UUID
    on_duplicate: str
    owner: str
    enabled: bool


class DropFolderIn(Input):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    directory: Annotated[str, Field(pattern=r"^[-a-zA-Z0-9_]{1,100}$")]
    encryption_key: uuid.UUID | None = None
    on_duplicate: ImportBatch.OnDuplicate = ImportBatch.OnDuplicate.SKIP


class DropSetOut(Schema):
    name: str
    state: str
    problem_code: str
    problem_message: str
    import_batch: uuid.UUID | None


def folder_out(f: DropFolder) -> DropFolderOut:
    return DropFolderOut(
        code=f.code,
        name=f.name,
        directory=f.directory,
        path=str(dropfolder.folder_path(f)),
        encryption_key=f.encryption_key.code,
        on_duplicate=f.on_duplicate,
        owner=f.owner.email,
        enabled=f.enabled,
    )


@router.get(
    "/drop-folders",
    response={200: list[DropFolderOut], **ERRORS},
    summary="List drop folders",
    auth=needs("certificates.read"),
)
def folder_list(request: HttpRequest) -> list[DropFolderOut]:
    rows = access.scoped(DropFolder.objects.select_related("encryption_key", "owner"), user(request))
    return [folder_out(f) for f in rows]


@router.post(
    "/drop-folders",
    response={201: DropFolderOut, **ERRORS},
    summary="Create a drop folder",
    auth=needs("certificates.create"),
)
def folder_create(request: HttpRequest, body: DropFolderIn) -> Status[DropFolderOut]:
    """The folder's imports act with your roles and scope tags, with the key and duplicate rule given here."""
    admin = user(request)
    folder = dropfolder.folder_create(
        auth.actor(request),
        owner=admin,
        name=body.name,
        directory=body.directory,
        key=key_for(admin, body.encryption_key),
        on_duplicate=body.on_duplicate,
    )
    return Status(201, folder_out(folder))


class PushIn(Input):
    name: Annotated[
        str, Field(pattern=r"^[-a-zA-Z0-9_.]{1,200}$", description="The set's name, unique per folder.")
    ]


@router.post(
    "/drop-folders/{code}/sets",
    response={201: DropSetOut, **ERRORS},
    summary="Push a set to a drop folder",
    auth=needs("certificates.create"),
)
def set_push(
    request: HttpRequest,
    code: uuid.UUID,
    manifest_file: File[UploadedFile],
    files: File[list[UploadedFile]],
    options: Form[PushIn],
) -> Status[DropSetOut]:
    """Imported exactly once per name: pushing a name again is refused with ``already_imported`` (409),
    so a CA's job can safely push again after a timeout. A refused set is answered 201 with its problem."""
    folder = access.get_for_user(
        user(request), DropFolder.objects.select_related("encryption_key", "owner"), write="create", code=code
    )
    if not folder.enabled:
        raise Refused(
            "folder_disabled", "The drop folder is disabled: enable it to import into it.", status=409
        )
    pushed = dropfolder.Pushed(options.name, manifest_file.read(), [(u.name or "", u.read()) for u in files])
    found: DropSet = dropfolder.import_set(folder, pushed, actor=auth.actor(request))
    return Status(
        201,
        DropSetOut(
            name=found.name,
            state=found.state,
            problem_code=found.problem_code,
            problem_message=found.problem_message,
            import_batch=found.batch.code if found.batch else None,
        ),
    )

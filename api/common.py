"""What the API's routes share: the declared errors, the caller's keys and the upload limits."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.db.models import QuerySet
from django.http import HttpRequest

from api.problems import Problem
from certs.models import EncryptionKey
from portal import access
from portal.lib.refusal import Refused
from portal.models import User

# Every route may answer these, as problem details.
ERRORS: dict[Any, Any] = {frozenset({400, 401, 403, 404, 409, 413, 422, 429}): Problem}


def user(request: HttpRequest) -> User:
    found = request.user
    assert isinstance(found, User)
    return found


def usable_keys(admin: User) -> QuerySet[EncryptionKey]:
    """The keys the admin may read; importing with a key is using it (as on the import pages)."""
    return access.scoped(EncryptionKey.objects.all(), admin, "read")


def key_for(admin: User, code: uuid.UUID | None) -> EncryptionKey:
    keys = usable_keys(admin)
    key = keys.filter(code=code).first() if code else keys.filter(is_default=True).first()
    if key is None:
        key = None if code else keys.first()
    if key is None:
        raise Refused(
            "no_key",
            "No such encryption key, or none you may use; add one under Tenant administration > Encryption keys.",
        )
    return key


def check_upload_size(request: HttpRequest) -> None:
    if int(request.META.get("CONTENT_LENGTH") or 0) > settings.CERTS_MAX_UPLOAD_BYTES:
        raise Refused("request_too_large", "The upload is larger than this portal accepts.", status=413)


class KeepInMemory(MemoryFileUploadHandler):
    """Keep every uploaded file in memory, so a manifest's passwords never touch a temporary file.

    Safe because the request's size is checked (``check_upload_size``) before the body is read.
    """

    def handle_raw_input(self, *args: Any, **kwargs: Any) -> None:
        super().handle_raw_input(*args, **kwargs)
        self.activated = True


def prepare_upload(request: HttpRequest) -> None:
    """Before a multipart body is read: refuse one too large, and keep its files in memory."""
    if (request.content_type or "").startswith("multipart/"):
        check_upload_size(request)
        request.upload_handlers = [KeepInMemory(request)]

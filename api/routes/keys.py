"""Encryption keys: list, add a connector's public key (PEM or CNG blob), set the default."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from ninja import File, Form, Router, Status
from ninja.files import UploadedFile

from api import auth, render
from api.auth import needs
from api.columns import SchemaTimeText, UuidText
from api.common import ERRORS, usable_keys, user
from api.schemas import Input, KeyOut
from certs import keys as key_services
from certs.models import EncryptionKey, Padding
from portal import access
from portal.lib.refusal import Refused
from portal.lib.shapes import Shapes

router = Router(tags=["Encryption keys"])

KEY_FILE_MAX = 16 * 1024


def key_out(key: EncryptionKey) -> KeyOut:
    return KeyOut(
        code=key.code,
        provider_name=key.provider_name,
        key_name=key.key_name,
        size=key.size,
        fingerprint=key.fingerprint,
        default_padding=key.default_padding,
        is_default=key.is_default,
        source=key.source,
        possession_proven=key.possession_proven,
        public_key_pem=key.public_key_pem,
        created_at=key.created_at,
    )


# KeyOut's fields as the schema writes them, read as columns (possession_proven: when it was proven).
KEY_FIELDS = tuple(KeyOut.model_fields)
KEY_VALUES = (
    UuidText("code"),
    "provider_name",
    "key_name",
    "size",
    "fingerprint",
    "default_padding",
    "is_default",
    "source",
    "possession_proven_at",
    "public_key_pem",
    SchemaTimeText("created_at"),
)
SHAPES = Shapes("api.encryption-keys")


@router.get(
    "/encryption-keys",
    response={200: list[KeyOut], **ERRORS},
    summary="List encryption keys",
    auth=needs("connectors.read"),
)
def key_list(request: HttpRequest) -> HttpResponse:
    admin = user(request)
    rows = SHAPES.rows(access.viewer_key(admin), lambda v: usable_keys(admin).values_list(*KEY_VALUES), {})
    items = render.rows(KEY_FIELDS, rows)
    for item in items:
        item["is_default"] = bool(item["is_default"])
        item["possession_proven"] = item["possession_proven"] is not None
    return render.schema_answer(items)


@router.get(
    "/encryption-keys/{code}",
    response={200: KeyOut, **ERRORS},
    summary="Get an encryption key",
    auth=needs("connectors.read"),
)
def key_get(request: HttpRequest, code: uuid.UUID) -> KeyOut:
    return key_out(access.get_for_user(user(request), EncryptionKey.objects.all(), code=code))


class KeyIn(Input):
    provider_name: str = "Microsoft Software Key Storage Provider"
    key_name: str = "PFXEncryptionKey"
    default_padding: Padding = Padding.OAEP_SHA512
    make_default: bool = False


@router.post(
    "/encryption-keys",
    response={201: KeyOut, **ERRORS},
    summary="Add an encryption key",
    auth=needs("connectors.create"),
)
def key_add(request: HttpRequest, key_file: File[UploadedFile], options: Form[KeyIn]) -> Status[KeyOut]:
    """``key_file``: a PEM public key (BEGIN PUBLIC KEY) or the CNG RSAPUBLICBLOB that
    Export-IntunePublicKey writes. A private key is refused."""
    admin = user(request)
    if (key_file.size or 0) > KEY_FILE_MAX:
        raise Refused(
            "key_file_too_large", "A public key file is a few hundred bytes; this one is too large."
        )
    provider, name = options.provider_name.strip(), options.key_name.strip()
    if not provider or not name or len(provider) > 200 or len(name) > 200:
        raise Refused("bad_key_name", "provider_name and key_name are 1 to 200 characters.")
    key = key_services.key_add(
        auth.actor(request),
        data=key_file.read(),
        provider_name=provider,
        key_name=name,
        default_padding=options.default_padding,
        make_default=options.make_default,
        tags=access.creator_tags(admin, "connectors"),
    )
    return Status(201, key_out(key))


@router.post(
    "/encryption-keys/{code}/default",
    response={200: KeyOut, **ERRORS},
    summary="Make a key the default",
    auth=needs("connectors.update"),
)
def key_default(request: HttpRequest, code: uuid.UUID) -> KeyOut:
    key = access.get_for_user(user(request), EncryptionKey.objects.all(), write="update", code=code)
    return key_out(key_services.key_set_default(auth.actor(request), key=key))

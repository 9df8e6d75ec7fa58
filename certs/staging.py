"""Staging encryption for PFX passwords that wait in the database for a worker.

AES-256-GCM under a key that is never stored in the database: it comes from
``PORTAL_STAGING_KEY`` (Base64 of 32 bytes) or the file named by
``PORTAL_STAGING_KEY_FILE``; in development a key is generated once into the data
folder so the web process and the workers agree without set-up. Each ciphertext is
bound to its import item, so a staged value cannot be replayed onto another row.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from functools import cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = b"\x01"


class StagingError(Exception):
    """The staged password cannot be read (wrong key, altered or missing ciphertext)."""


def _decode(text: str, origin: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImproperlyConfigured(f"{origin} must be Base64 of {KEY_BYTES} random bytes") from exc
    if len(key) != KEY_BYTES:
        raise ImproperlyConfigured(f"{origin} must be Base64 of {KEY_BYTES} random bytes")
    return key


@cache
def _key() -> bytes:
    value = os.environ.get("PORTAL_STAGING_KEY") or getattr(settings, "PORTAL_STAGING_KEY", "")
    if value:
        return _decode(value, "PORTAL_STAGING_KEY")
    file = os.environ.get("PORTAL_STAGING_KEY_FILE") or getattr(settings, "PORTAL_STAGING_KEY_FILE", "")
    if file:
        return _decode(Path(file).read_text(), "PORTAL_STAGING_KEY_FILE")
    if getattr(settings, "PRODUCTION", False):
        raise ImproperlyConfigured("PORTAL_STAGING_KEY or PORTAL_STAGING_KEY_FILE is required in production")
    path = Path(settings.DATA_DIR) / "staging_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii"))
    return _decode(path.read_text(), str(path))


@cache
def _cipher() -> AESGCM:
    return AESGCM(_key())


def seal(password: str, *, context: str) -> bytes:
    """Encrypt ``password`` for the row named by ``context`` (for example the item's batch and position)."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = _cipher().encrypt(nonce, password.encode("utf-8"), context.encode("utf-8"))
    return VERSION + nonce + sealed


def unseal(value: bytes | memoryview | None, *, context: str) -> str:
    if not value:
        raise StagingError("no staged password")
    data = bytes(value)
    if data[:1] != VERSION or len(data) < 1 + NONCE_BYTES + 16:
        raise StagingError("unknown staging format")
    try:
        plain = _cipher().decrypt(data[1 : 1 + NONCE_BYTES], data[1 + NONCE_BYTES :], context.encode())
    except InvalidTag as exc:
        raise StagingError("the staged password does not open with this staging key") from exc
    return plain.decode("utf-8")

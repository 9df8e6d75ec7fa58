"""Symmetric encryption at rest, under keys that never enter the database.

A keyring is one key or several, comma-separated, each Base64 (standard or URL-safe alphabet)
of 32 random bytes: the first seals, every one opens, so a key is rotated by putting a new one
first and dropping the old one once nothing sealed under it is left.

A sealed value is ``0x01 | 12-byte nonce | AES-256-GCM ciphertext and tag``, with a context as
associated data: what the value is and which row it belongs to, so that a value copied onto
another row or into another field does not open there. A keyring may also open Fernet tokens,
the format the stored Microsoft Graph credential had before: those carry no context.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.exceptions import ImproperlyConfigured

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
VERSION = b"\x01"


class Unsealable(Exception):
    """The value does not open: another key sealed it, it was altered, or it belongs to another context."""


def new_key() -> str:
    """A fresh key, as a keyring setting holds it."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def parse_keys(text: str, *, origin: str) -> list[bytes]:
    """The keys of a keyring setting; ``ImproperlyConfigured`` naming ``origin`` when one is unusable."""
    keys: list[bytes] = []
    for part in text.split(","):
        if not part.strip():
            continue
        # Both Base64 alphabets are accepted (Fernet keys are URL-safe); they differ only in two characters.
        standard = part.strip().replace("-", "+").replace("_", "/")
        try:
            key = base64.b64decode(standard, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured(f"{origin} must be Base64 of {KEY_BYTES} random bytes") from exc
        if len(key) != KEY_BYTES:
            raise ImproperlyConfigured(f"{origin} must be Base64 of {KEY_BYTES} random bytes")
        keys.append(key)
    if not keys:
        raise ImproperlyConfigured(f"{origin} holds no key")
    return keys


class Sealer:
    """Seals under the first key of a keyring and opens under any of them."""

    def __init__(self, keys: Sequence[bytes], *, opens_fernet: bool = False) -> None:
        if not keys:
            raise ValueError("a sealer needs at least one key")
        self._ciphers = [AESGCM(key) for key in keys]
        self._fernet = (
            MultiFernet([Fernet(base64.urlsafe_b64encode(key)) for key in keys]) if opens_fernet else None
        )

    def seal(self, plain: bytes, *, context: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return VERSION + nonce + self._ciphers[0].encrypt(nonce, plain, context.encode("utf-8"))

    def open(self, sealed: bytes | memoryview, *, context: str) -> bytes:
        data = bytes(sealed)
        if data[:1] == VERSION and len(data) >= 1 + NONCE_BYTES + TAG_BYTES:
            nonce, body = data[1 : 1 + NONCE_BYTES], data[1 + NONCE_BYTES :]
            for cipher in self._ciphers:
                try:
                    return cipher.decrypt(nonce, body, context.encode("utf-8"))
                except InvalidTag:
                    continue
            raise Unsealable("the value does not open with any configured key in this context")
        if self._fernet is not None:
            try:
                return self._fernet.decrypt(data)
            except InvalidToken as exc:
                raise Unsealable("the value does not open with any configured key") from exc
        raise Unsealable("the value is not in a sealed format")


@lru_cache(maxsize=8)
def sealer(keyring: str, *, origin: str, opens_fernet: bool = False) -> Sealer:
    """The sealer for a keyring setting's text; ``origin`` names the setting in configuration errors.

    Callers pass the setting's current value on each use, so a changed setting takes effect at once.
    """
    return Sealer(parse_keys(keyring, origin=origin), opens_fernet=opens_fernet)

"""The single import's file and password, held on the server between the check and the import.

A page never sends a password back to the browser, and a browser never fills a file input in
again. So when the import page is shown again after a full-page check or a refused import, the
file and its password wait here instead: in the cache for ``HOLD_SECONDS``, the password sealed
with the staging key, under an opaque token that only the admin who uploaded them can redeem.
The page carries the token, never the password.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

from django.core.cache import cache

from certs import staging

HOLD_SECONDS = 15 * 60
_TOKEN_MAX = 100


@dataclass(frozen=True)
class Held:
    token: str
    filename: str
    data: bytes = field(repr=False)
    password: str = field(repr=False)


def _digest(token: str) -> str:
    # The cache is keyed by a digest, so its contents do not give the token away.
    return hashlib.sha256(token.encode()).hexdigest()


def _context(token: str, user_id: int) -> str:
    return f"held:{_digest(token)}:{user_id}"


def hold(user_id: int, *, filename: str, data: bytes, password: str) -> Held:
    token = secrets.token_urlsafe(32)
    value = {
        "user": user_id,
        "filename": filename,
        "data": data,
        "password": staging.seal(password, context=_context(token, user_id)),
    }
    cache.set(f"certs:held:{_digest(token)}", value, HOLD_SECONDS)
    return Held(token, filename, data, password)


def take(user_id: int, token: str) -> Held | None:
    """What ``token`` holds for this admin; None if it expired, is someone else's or was altered."""
    if not token or len(token) > _TOKEN_MAX:
        return None
    value = cache.get(f"certs:held:{_digest(token)}")
    if not isinstance(value, dict) or value.get("user") != user_id:
        return None
    try:
        password = staging.unseal(value["password"], context=_context(token, user_id))
    except (staging.StagingError, KeyError):
        return None
    return Held(token, str(value.get("filename", "")), bytes(value.get("data", b"")), password)


def release(token: str) -> None:
    cache.delete(f"certs:held:{_digest(token)}")

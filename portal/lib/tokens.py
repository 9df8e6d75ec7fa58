"""Bearer secrets (enrolment tokens, credentials): issued once, kept only as a hash, redeemed once.

Each is a prefix naming its kind followed by 256 random bits; the prefix tells a pasted value's
kind at a glance, and the hint (prefix and four characters) tells rows apart without revealing it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Protocol

from portal.lib.refusal import Refused


def hash_secret(secret: str) -> str:
    """Credentials and tokens are 256-bit random values: one SHA-256 is enough, and it is looked up by value.

    What a client sends may be any text, lone surrogates included: it hashes (to no stored value)
    rather than failing."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new(prefix: str) -> str:
    """A fresh secret of the kind ``prefix`` names."""
    return prefix + secrets.token_urlsafe(32)


def hint(secret: str, prefix: str) -> str:
    """What a list shows of ``secret``: its prefix and four characters."""
    return secret[: len(prefix) + 4]


class OneTime(Protocol):
    @property
    def used_at(self) -> datetime | None: ...
    @property
    def expires_at(self) -> datetime: ...


def redeemable[T: OneTime](row: T | None, now: datetime, noun: str) -> T:
    """``row`` if it can still be redeemed at ``now``; else refused, saying why, with ``noun`` ("enrollment token")."""
    if row is None:
        raise Refused("invalid_token", f"The {noun} is not known.", status=401)
    if row.used_at is not None:
        raise Refused("token_used", f"The {noun} has already been used.", status=401)
    if row.expires_at <= now:
        raise Refused("token_expired", f"The {noun} has expired.", status=401)
    return row

"""Staging encryption for PFX passwords that wait in the database (or the cache) for a worker.

Sealed with the ``PORTAL_STAGING_KEY`` keyring, which never enters the database or the broker.
Each value is bound to its import item, so a staged value cannot be replayed onto another row.
"""

from __future__ import annotations

from django.conf import settings

from portal.lib import sealing


class StagingError(Exception):
    """The staged password cannot be read (wrong key, altered or missing ciphertext)."""


def _sealer() -> sealing.Sealer:
    return sealing.sealer(settings.PORTAL_STAGING_KEY, origin="PORTAL_STAGING_KEY")


def seal(password: str, *, context: str) -> bytes:
    """Encrypt ``password`` for the row named by ``context`` (for example the item's batch and position)."""
    return _sealer().seal(password.encode("utf-8"), context=context)


def unseal(value: bytes | memoryview | None, *, context: str) -> str:
    if not value:
        raise StagingError("no staged password")
    try:
        plain = _sealer().open(value, context=context)
    except sealing.Unsealable as exc:
        raise StagingError("the staged password does not open with this staging key") from exc
    return plain.decode("utf-8")

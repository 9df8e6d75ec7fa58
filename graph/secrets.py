"""Encryption at rest for stored credentials, with a key that never goes into the database.

The key comes from the ``PORTAL_SECRETS_KEY`` setting (a Fernet key; several,
comma-separated, to rotate: the first encrypts, all decrypt). Outside production,
with no key configured, one is generated once into the data folder.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """The stored value was encrypted with a key this deployment no longer has."""


@cache
def _fernet() -> MultiFernet:
    raw = str(getattr(settings, "PORTAL_SECRETS_KEY", "") or "")
    if not raw:
        if getattr(settings, "PRODUCTION", False):
            raise ImproperlyConfigured(
                "PORTAL_SECRETS_KEY (or PORTAL_SECRETS_KEY_FILE) is required in production"
            )
        path = Path(settings.DATA_DIR) / "secrets.key"
        if not path.exists():
            path.write_bytes(Fernet.generate_key())
            path.chmod(0o600)
        raw = path.read_text().strip()
    try:
        return MultiFernet([Fernet(part.strip()) for part in raw.split(",") if part.strip()])
    except ValueError as exc:
        raise ImproperlyConfigured("PORTAL_SECRETS_KEY must be url-safe base64 Fernet keys") from exc


def seal(value: dict[str, Any]) -> bytes:
    return _fernet().encrypt(json.dumps(value).encode())


def unseal(token: bytes | memoryview) -> dict[str, Any]:
    try:
        value = json.loads(_fernet().decrypt(bytes(token)))
    except InvalidToken as exc:
        raise SecretUnreadable("The stored credential cannot be decrypted with the configured key") from exc
    return value if isinstance(value, dict) else {}

"""The stored Microsoft Graph credential, sealed at rest with the ``PORTAL_SECRETS_KEY`` keyring.

Credentials stored before as Fernet tokens under the same keys still open.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from portal.lib import sealing

_CONTEXT = "graph:tenant-credential"


class SecretUnreadable(Exception):
    """The stored value was encrypted with a key this deployment no longer has."""


def _sealer() -> sealing.Sealer:
    return sealing.sealer(settings.PORTAL_SECRETS_KEY, origin="PORTAL_SECRETS_KEY", opens_fernet=True)


def seal(value: dict[str, Any]) -> bytes:
    return _sealer().seal(json.dumps(value).encode(), context=_CONTEXT)


def unseal(token: bytes | memoryview) -> dict[str, Any]:
    try:
        value = json.loads(_sealer().open(token, context=_CONTEXT))
    except sealing.Unsealable as exc:
        raise SecretUnreadable("The stored credential cannot be decrypted with the configured key") from exc
    return value if isinstance(value, dict) else {}

"""The PFX engine's limits, from Django settings (defaults and reasons in portal/settings.py).

Outside a configured Django process (a device client opening the PFX it was sent) the defaults
apply.
"""

from __future__ import annotations

from django.conf import settings

DEFAULT_MAX_FILE_BYTES = 1024 * 1024
DEFAULT_MAX_KDF_ITERATIONS = 1_000_000
DEFAULT_EXPIRES_SOON_DAYS = 30


def max_file_bytes() -> int:
    return settings.PFX_MAX_FILE_BYTES if settings.configured else DEFAULT_MAX_FILE_BYTES


def max_kdf_iterations() -> int:
    return settings.PFX_MAX_KDF_ITERATIONS if settings.configured else DEFAULT_MAX_KDF_ITERATIONS


def expires_soon_days() -> int:
    return settings.PFX_EXPIRES_SOON_DAYS if settings.configured else DEFAULT_EXPIRES_SOON_DAYS

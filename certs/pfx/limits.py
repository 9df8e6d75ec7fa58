"""The PFX engine's limits, from Django settings (defaults and reasons in portal/settings.py)."""

from __future__ import annotations

from django.conf import settings


def max_file_bytes() -> int:
    return settings.PFX_MAX_FILE_BYTES


def max_kdf_iterations() -> int:
    return settings.PFX_MAX_KDF_ITERATIONS


def expires_soon_days() -> int:
    return settings.PFX_EXPIRES_SOON_DAYS

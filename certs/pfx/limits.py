"""Limits read from Django settings, with safe defaults."""

from __future__ import annotations

from django.conf import settings

# A user PFX with a long chain is a few kilobytes; 1 MiB leaves ample room.
DEFAULT_MAX_FILE_BYTES = 1024 * 1024
# Real producers go up to 600,000 (NSS, GnuTLS); a file claiming 2**31 must be refused.
DEFAULT_MAX_KDF_ITERATIONS = 1_000_000
DEFAULT_EXPIRES_SOON_DAYS = 30


def max_file_bytes() -> int:
    return int(getattr(settings, "PFX_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES))


def max_kdf_iterations() -> int:
    return int(getattr(settings, "PFX_MAX_KDF_ITERATIONS", DEFAULT_MAX_KDF_ITERATIONS))


def expires_soon_days() -> int:
    return int(getattr(settings, "PFX_EXPIRES_SOON_DAYS", DEFAULT_EXPIRES_SOON_DAYS))

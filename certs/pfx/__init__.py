"""The PFX engine: inspect PKCS#12 files and prepare them for Intune.

Public API (used by the import pipeline, the worker and the ``pfx`` command)::

    inspect_pfx(data, password, *, upn=None, purpose=None, now=None, ...) -> Inspection
    load_public_key(data) -> RSAPublicKey
    public_key_fingerprint(key) -> str
    encrypt_password(password, public_key, padding="oaepSha512") -> bytes
    max_password_bytes(key, padding) -> int
    build_graph_body(inspection, pfx, *, encrypted_password, upn, provider_name, key_name, ...) -> dict

Bad input raises ``ProblemError`` (stable ``code``); ``inspect_pfx`` reports file
problems in its result instead of raising.
"""

from __future__ import annotations

from certs.pfx.encrypt import DEFAULT_PADDING, PADDINGS, encrypt_password, max_password_bytes, password_bytes
from certs.pfx.graph_body import build_graph_body
from certs.pfx.inspect import PURPOSES, Inspection, inspect_pfx
from certs.pfx.keys import load_public_key, parse_rsa_public_blob, public_key_fingerprint, rsa_public_blob
from certs.pfx.problems import CATALOGUE, Problem, ProblemError

__all__ = [
    "CATALOGUE",
    "DEFAULT_PADDING",
    "PADDINGS",
    "PURPOSES",
    "Inspection",
    "Problem",
    "ProblemError",
    "build_graph_body",
    "encrypt_password",
    "inspect_pfx",
    "load_public_key",
    "max_password_bytes",
    "parse_rsa_public_blob",
    "password_bytes",
    "public_key_fingerprint",
    "rsa_public_blob",
]

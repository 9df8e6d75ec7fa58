"""The PKCS#12 key-derivation function (RFC 7292, appendix B.2).

cryptography does not expose this KDF, which PKCS#12 uses for its MAC key and for
the legacy PBE ciphers. We call OpenSSL's own ``PKCS12_key_gen_uni`` from the system
libcrypto when it is available (it is ~10x faster than hashing in a Python loop) and
otherwise compute it from hashlib. Both give the same bytes; the tests compare them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
from collections.abc import Callable
from itertools import repeat
from typing import Any

KEY_ID = 1
IV_ID = 2
MAC_ID = 3

HASHES = ("sha1", "sha224", "sha256", "sha384", "sha512")


def bmp_password(text: str) -> bytes:
    """The password as PKCS#12 wants it: UTF-16BE with a two-byte NUL terminator."""
    return text.encode("utf-16-be") + b"\x00\x00"


def pkcs12_kdf_python(
    hash_name: str, password: bytes, salt: bytes, purpose: int, iterations: int, n: int
) -> bytes:
    new: Callable[..., Any] = getattr(hashlib, hash_name)
    u: int = new().digest_size
    v: int = new().block_size
    d = bytes([purpose]) * v

    def stretch(value: bytes) -> bytes:
        if not value:
            return b""
        size = v * -(-len(value) // v)
        return (value * (size // len(value) + 1))[:size]

    i = stretch(salt) + stretch(password)
    out = b""
    while True:
        a: bytes = new(d + i).digest()
        for _ in repeat(None, iterations - 1):
            a = new(a).digest()
        out += a
        if len(out) >= n:
            return out[:n]
        b = int.from_bytes((a * (v // u + 1))[:v], "big") + 1
        mask = (1 << (8 * v)) - 1
        i = b"".join(
            ((int.from_bytes(i[j : j + v], "big") + b) & mask).to_bytes(v, "big") for j in range(0, len(i), v)
        )


def _load_openssl() -> Callable[[str, bytes, bytes, int, int, int], bytes] | None:
    path = ctypes.util.find_library("crypto")
    if not path:
        return None
    try:
        lib = ctypes.CDLL(path)
        keygen = lib.PKCS12_key_gen_uni
        digests = {}
        for name in HASHES:
            getter = getattr(lib, f"EVP_{name}")
            getter.restype = ctypes.c_void_p
            getter.argtypes = []
            digests[name] = getter()
    except (OSError, AttributeError):
        return None
    keygen.restype = ctypes.c_int
    keygen.argtypes = [
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_void_p,
    ]

    def kdf(hash_name: str, password: bytes, salt: bytes, purpose: int, iterations: int, n: int) -> bytes:
        out = ctypes.create_string_buffer(n)
        ok = keygen(password, len(password), salt, len(salt), purpose, iterations, n, out, digests[hash_name])
        if ok != 1:
            return pkcs12_kdf_python(hash_name, password, salt, purpose, iterations, n)
        return out.raw

    # Check the library agrees with the specification before trusting it.
    probe = ("sha256", bmp_password("probe"), b"salt", MAC_ID, 3, 40)
    if kdf(*probe) != pkcs12_kdf_python(*probe):
        return None
    return kdf


_openssl_kdf = _load_openssl()


def pkcs12_kdf(hash_name: str, password: bytes, salt: bytes, purpose: int, iterations: int, n: int) -> bytes:
    """Derive ``n`` bytes. ``password`` is already BMP-encoded (see ``bmp_password``)."""
    if hash_name not in HASHES:
        raise ValueError("unsupported hash")
    if _openssl_kdf is not None:
        return _openssl_kdf(hash_name, password, salt, purpose, iterations, n)
    return pkcs12_kdf_python(hash_name, password, salt, purpose, iterations, n)

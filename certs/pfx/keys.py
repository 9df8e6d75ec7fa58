"""The connector's public key: PEM SubjectPublicKeyInfo or Windows CNG RSAPUBLICBLOB."""

from __future__ import annotations

import hashlib
import struct

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from certs.pfx.problems import ProblemError

RSA1_MAGIC = 0x31415352  # "RSA1": BCRYPT_RSAPUBLIC_MAGIC
_PRIVATE_MAGICS = {0x32415352, 0x33415352}  # "RSA2" (private), "RSA3" (full private)
_HEADER = struct.Struct("<6I")
_MAX_BITS = 16384


def load_public_key(data: bytes) -> rsa.RSAPublicKey:
    """Parse a connector key file: PEM SPKI (LF or CRLF) or a CNG RSAPUBLICBLOB."""
    if len(data) >= 4 and int.from_bytes(data[:4], "little") in _PRIVATE_MAGICS:
        raise ProblemError("private_key_given")
    if len(data) >= 4 and int.from_bytes(data[:4], "little") == RSA1_MAGIC:
        return parse_rsa_public_blob(data)
    text = data.strip()
    if b"PRIVATE KEY-----" in text:
        raise ProblemError("private_key_given")
    if not text.startswith(b"-----BEGIN PUBLIC KEY-----"):
        raise ProblemError("bad_public_key")
    try:
        key = serialization.load_pem_public_key(text.replace(b"\r\n", b"\n"))
    except (ValueError, TypeError) as exc:
        raise ProblemError("bad_public_key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise ProblemError.of("bad_public_key", "the key is not an RSA key")
    return _checked(key)


def parse_rsa_public_blob(blob: bytes) -> rsa.RSAPublicKey:
    if len(blob) < _HEADER.size:
        raise ProblemError("bad_public_key")
    magic, bits, exponent_len, modulus_len, prime1_len, prime2_len = _HEADER.unpack_from(blob)
    if magic != RSA1_MAGIC or prime1_len or prime2_len or not 0 < exponent_len <= 8:
        raise ProblemError("bad_public_key")
    if modulus_len != (bits + 7) // 8 or len(blob) != _HEADER.size + exponent_len + modulus_len:
        raise ProblemError("bad_public_key")
    exponent = int.from_bytes(blob[_HEADER.size : _HEADER.size + exponent_len], "big")
    modulus = int.from_bytes(blob[_HEADER.size + exponent_len :], "big")
    try:
        key = rsa.RSAPublicNumbers(exponent, modulus).public_key()
    except ValueError as exc:
        raise ProblemError("bad_public_key") from exc
    return _checked(key)


def rsa_public_blob(key: rsa.RSAPublicKey) -> bytes:
    """The CNG RSAPUBLICBLOB that Export-IntunePublicKey writes (283 bytes for RSA-2048)."""
    numbers = key.public_numbers()
    exponent = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    modulus = numbers.n.to_bytes((key.key_size + 7) // 8, "big")
    return _HEADER.pack(RSA1_MAGIC, key.key_size, len(exponent), len(modulus), 0, 0) + exponent + modulus


def public_key_fingerprint(key: rsa.RSAPublicKey) -> str:
    """SHA-256 (hex) of the SubjectPublicKeyInfo DER: the same for PEM and CNG files."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _checked(key: rsa.RSAPublicKey) -> rsa.RSAPublicKey:
    if not 2048 <= key.key_size <= _MAX_BITS:
        raise ProblemError.of("bad_public_key", f"RSA-{key.key_size}; use 2048 to {_MAX_BITS} bits")
    return key

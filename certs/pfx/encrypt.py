"""Encrypting the PFX password for the connector: RSA-OAEP as PFXImport does it."""

from __future__ import annotations

from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa

from certs.pfx.problems import ProblemError

PasswordEncoding = Literal["strict", "reference"]

DEFAULT_PADDING = "oaepSha512"
PADDINGS: dict[str, type[hashes.HashAlgorithm]] = {
    "oaepSha256": hashes.SHA256,
    "oaepSha384": hashes.SHA384,
    "oaepSha512": hashes.SHA512,
}
_REFUSED = {"pkcs1", "oaepsha1", "none"}


def normalise_padding(padding: str) -> str:
    """Accept Graph (camelCase) or PFXImport (PascalCase) spellings; refuse pkcs1 and oaepSha1."""
    for name in PADDINGS:
        if padding.lower() == name.lower():
            return name
    raise ProblemError.of("bad_padding", padding[:40] if padding.lower() in _REFUSED else None)


def password_bytes(password: str | bytes | None, encoding: PasswordEncoding = "strict") -> bytes:
    """The bytes the connector expects.

    strict: 7-bit ASCII only, the one encoding all Microsoft code paths agree on.
    reference: PFXImport's own rule, the low byte of each UTF-16 unit, allowed for U+0000-U+00FF.
    """
    if password is None:
        return b""
    text = password.decode("utf-8", "replace") if isinstance(password, bytes) else password
    if isinstance(password, bytes) and password.isascii():
        return password
    if text.isascii():
        return text.encode("ascii")
    if encoding == "reference" and all(ord(c) <= 0xFF for c in text):
        return text.encode("latin-1")
    raise ProblemError("password_not_ascii")


def max_password_bytes(key: rsa.RSAPublicKey, padding: str = DEFAULT_PADDING) -> int:
    """OAEP limit: k - 2*hLen - 2 (RSA-2048: 126 with SHA-512, 158 with SHA-384, 190 with SHA-256)."""
    digest = PADDINGS[normalise_padding(padding)]().digest_size
    return (key.key_size + 7) // 8 - 2 * digest - 2


def encrypt_password(
    password: str | bytes | None,
    public_key: rsa.RSAPublicKey,
    padding: str = DEFAULT_PADDING,
    *,
    encoding: PasswordEncoding = "strict",
) -> bytes:
    """RSA-OAEP(H, MGF1(H), empty label) over the password bytes."""
    name = normalise_padding(padding)
    data = password_bytes(password, encoding)
    if len(data) > max_password_bytes(public_key, name):
        raise ProblemError.of("password_too_long", f"at most {max_password_bytes(public_key, name)} bytes")
    algorithm = PADDINGS[name]()
    return public_key.encrypt(
        data, rsa_padding.OAEP(mgf=rsa_padding.MGF1(algorithm=algorithm), algorithm=algorithm, label=None)
    )

"""The device side of delivery's cryptography, shared by the portal and any device client.

No Django here: the device simulator (and a real device agent) uses it as it is.

* A device enrols with its own RSA key pair (2048 bits or more) and proves it holds the
  private key by signing a statement naming the public key (RSA-PSS, SHA-256).
* A certificate's password reaches the device encrypted to that key with RSA-OAEP, MGF1
  SHA-256: a PFX password fits one OAEP block, so the connector needs no other primitive
  than the one it already uses, and the portal can check the ciphertext's length before
  keeping it. See docs/delivery.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CONTEXT = b"PFX Portal device key possession v1"
PADDING = "oaepSha256"
MIN_KEY_BITS = 2048
MAX_KEY_BITS = 8192
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class BadPublicKey(ValueError):
    pass


def load_public(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key of an accepted size, or :class:`BadPublicKey` saying why not."""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeError, TypeError) as exc:
        raise BadPublicKey("public_key_pem is not a PEM public key.") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise BadPublicKey("The device key must be an RSA key.")
    if not MIN_KEY_BITS <= key.key_size <= MAX_KEY_BITS:
        raise BadPublicKey(f"The device key must have {MIN_KEY_BITS} to {MAX_KEY_BITS} bits.")
    return key


def fingerprint(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def statement(key: rsa.RSAPublicKey) -> bytes:
    return CONTEXT + b"\n" + fingerprint(key).encode("ascii")


def prove(key: rsa.RSAPrivateKey) -> str:
    return base64.b64encode(key.sign(statement(key.public_key()), _PSS, hashes.SHA256())).decode("ascii")


def holds(key: rsa.RSAPublicKey, proof: str) -> bool:
    try:
        key.verify(base64.b64decode(proof, validate=True), statement(key), _PSS, hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def encrypt_password(key: rsa.RSAPublicKey, password: bytes) -> bytes:
    return key.encrypt(password, _OAEP)


def decrypt_password(key: rsa.RSAPrivateKey, ciphertext: bytes) -> bytes:
    return key.decrypt(ciphertext, _OAEP)

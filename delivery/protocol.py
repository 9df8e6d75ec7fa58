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


class PfxIncomplete(ValueError):
    """The PFX opened but holds no RSA key beside the certificate of its public half."""


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


def open_pfx(data: bytes, password: bytes) -> tuple[rsa.RSAPrivateKey, bytes]:
    """The PFX's RSA key and the DER of the certificate holding that key's public half.

    Opened as the portal's import opens files (``certs.pfx.reader``): MAC verified, bags decrypted,
    the key checked with cheap arithmetic (n = p*q, the CRT values) instead of OpenSSL's primality
    tests, which cost a device 50 ms per certificate for nothing; a layout that reader does not
    know goes to cryptography's PKCS#12 loader. :class:`PfxIncomplete` when it holds no matching
    key and certificate, ``ValueError`` when it does not open.
    """
    from certs.pfx import limits
    from certs.pfx.der import read_pfx
    from certs.pfx.problems import ProblemError
    from certs.pfx.reader import Opened, Password, open_fast
    from certs.pfx.structure import PARSE_ERRORS

    structure = read_pfx(data, limits.max_kdf_iterations())
    opened: Opened | None = None
    try:
        opened = open_fast(structure, Password.of(password)) if structure is not None else None
    except (ProblemError, *PARSE_ERRORS) as exc:
        raise ValueError(str(exc)) from None
    if opened is None:
        from cryptography.hazmat.primitives.serialization import pkcs12

        key, certificate, extra = pkcs12.load_key_and_certificates(data, password)
        opened = Opened([key] if key is not None else [], [c for c in [certificate, *extra] if c])
    for key in opened.keys:
        if not isinstance(key, rsa.RSAPrivateKey):
            continue
        public = key.public_key().public_numbers()
        for certificate in opened.certificates:
            theirs = certificate.public_key()
            if isinstance(theirs, rsa.RSAPublicKey) and theirs.public_numbers() == public:
                return key, opened.der_of(certificate)
    raise PfxIncomplete("The PFX lacks its certificate or private key.")

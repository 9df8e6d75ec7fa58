"""Small PFX files and Graph bodies for the tests: one EC key, a fresh certificate per call."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID


@cache
def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_pfx(subject: str = "Test User") -> tuple[bytes, str, x509.Certificate]:
    """A PFX holding a new certificate (certificate bag in the clear), its thumbprint and the certificate."""
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_key().public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(_key(), hashes.SHA256())
    )
    pfx = pkcs12.serialize_key_and_certificates(b"t", _key(), cert, None, serialization.NoEncryption())
    thumbprint = hashlib.sha1(
        cert.public_bytes(serialization.Encoding.DER), usedforsecurity=False
    ).hexdigest()
    return pfx, thumbprint, cert


def graph_body(
    upn: str, *, purpose: str = "smimeEncryption", pfx: bytes | None = None, thumbprint: str = ""
) -> dict[str, str]:
    if pfx is None:
        pfx, thumbprint, cert = make_pfx(upn)
    else:
        cert = pkcs12.load_pkcs12(pfx, None).cert.certificate  # type: ignore[union-attr]
    return {
        "thumbprint": thumbprint,
        "intendedPurpose": purpose,
        "userPrincipalName": upn,
        "startDateTime": cert.not_valid_before_utc.isoformat(),
        "expirationDateTime": cert.not_valid_after_utc.isoformat(),
        "providerName": "Microsoft Software Key Storage Provider",
        "keyName": "PFXEncryptionKey",
        "paddingScheme": "oaepSha512",
        "encryptedPfxBlob": base64.b64encode(pfx).decode(),
        "encryptedPfxPassword": base64.b64encode(b"\x01" * 256).decode(),
    }

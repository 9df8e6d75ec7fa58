"""Opening PKCS#12 files with the password, once ``read_structure`` has checked them.

``open_fast`` verifies the MAC and decrypts the bags with cryptography's primitives, loading
the private key without OpenSSL's expensive RSA primality checks (cheap arithmetic checks
stand in for them). Anything it does not recognise makes it return ``None`` so the caller
falls back to ``open_library`` (cryptography's PKCS#12 loader). When opening fails,
``diagnose`` tells a wrong password from a damaged file.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.serialization import pkcs12

from certs.pfx.kdf import IV_ID, KEY_ID, MAC_ID, bmp_password, pkcs12_kdf
from certs.pfx.model import (
    CERT_BAG,
    KEY_BAG,
    MAX_NESTING,
    SAFE_CONTENTS,
    SHROUDED_KEY_BAG,
    Bag,
    Container,
    Protection,
    Structure,
)
from certs.pfx.problems import ProblemError
from certs.pfx.structure import PARSE_ERRORS, PBKDF2_HASHES, read_bags


@dataclass(frozen=True)
class Password:
    """The password in the encodings PKCS#12 producers use. Its repr never shows it."""

    text: str
    raw: bytes
    given: bool

    @classmethod
    def of(cls, password: str | bytes | None) -> Password:
        if password is None:
            return cls("", b"", given=False)
        if isinstance(password, bytes):
            try:
                return cls(password.decode("utf-8"), password, given=True)
            except UnicodeDecodeError:
                return cls(password.decode("latin-1"), password, given=True)
        return cls(password, password.encode("utf-8", "surrogatepass"), given=True)

    def __repr__(self) -> str:
        return "Password(***)"

    def bmp_candidates(self) -> list[bytes]:
        """BMPString forms for the MAC and PKCS#12 PBE, most likely first."""
        if not self.text:
            # OpenSSL writes an empty password as a lone terminator, some tools as nothing.
            return [b"\x00\x00", b""]
        candidates = [bmp_password(self.text)]
        if not self.text.isascii():
            # OpenSSL 1.x widened each UTF-8 byte on its own.
            candidates.append(b"".join(b"\x00" + bytes([c]) for c in self.raw) + b"\x00\x00")
        return candidates

    def byte_candidates(self) -> list[bytes]:
        """Byte forms for PBKDF2 (PBES2), most likely first."""
        candidates = [self.raw]
        try:
            latin = self.text.encode("latin-1")
        except UnicodeEncodeError:
            return candidates
        if latin != self.raw:
            candidates.append(latin)
        return candidates


@dataclass
class Opened:
    keys: list[PrivateKeyTypes]
    certificates: list[x509.Certificate]
    # The DER of the first certificates as the file holds it (the same bytes ``public_bytes``
    # would encode again, without the cost).
    ders: list[bytes] = field(default_factory=list)

    def der_of(self, certificate: x509.Certificate) -> bytes:
        for known, der in zip(self.certificates, self.ders, strict=False):
            if known is certificate:
                return der
        return certificate.public_bytes(serialization.Encoding.DER)


class _Unsupported(Exception):
    """The fast path does not handle this; the library loader may."""


# --- Opening ----------------------------------------------------------------


def verify_mac(structure: Structure, password: Password) -> bytes | None:
    """The BMP password form that verifies the MAC, or None."""
    mac = structure.mac
    if mac is None:
        return None
    size = hashlib.new(mac.hash_name).digest_size
    for candidate in password.bmp_candidates():
        key = pkcs12_kdf(mac.hash_name, candidate, mac.salt, MAC_ID, mac.iterations, size)
        digest = hmac.digest(key, structure.auth_safe, mac.hash_name)
        if hmac.compare_digest(digest, mac.digest):
            return candidate
    return None


def open_fast(structure: Structure, password: Password) -> Opened | None:
    """Open with our own PKCS#12 code; None when the library loader should decide."""
    bmp: bytes | None = None
    if structure.mac is not None:
        bmp = verify_mac(structure, password)
        if bmp is None:
            raise diagnose(structure, password)
    try:
        return _open_verified(structure, password, bmp)
    except (_Unsupported, *PARSE_ERRORS):
        return None


def _open_verified(structure: Structure, password: Password, bmp: bytes | None) -> Opened:
    key_ders: list[bytes] = []
    cert_ders: list[bytes] = []
    keys: list[PrivateKeyTypes] = []
    library_certs: list[x509.Certificate] = []
    for container in structure.containers:
        bags = container.bags
        if container.protection is not None:
            try:
                plaintext = _decrypt(container.protection, container.ciphertext, password, bmp)
            except _Unsupported:
                # Typically RC2-40 certificate containers: let the library decrypt just this part.
                opened = _open_container_with_library(container, password)
                keys += opened.keys
                library_certs += opened.certificates
                continue
            bags = read_bags(plaintext)  # checks the iteration caps of key bags inside
        _collect(bags, password, bmp, key_ders, cert_ders, 0)
    keys += [load_private_key_quickly(der) for der in key_ders]
    certificates = [x509.load_der_x509_certificate(der) for der in cert_ders] + library_certs
    return Opened(keys, certificates, cert_ders)


def _open_container_with_library(container: Container, password: Password) -> Opened:
    """Wrap one encrypted container in a MAC-less PFX of its own and load that.

    The container holds certificates only in practice, so the library decrypts it
    without loading (and primality-testing) the user's RSA key.
    """
    auth_safe = asn1_pkcs12.AuthenticatedSafe([asn1_pkcs12.ContentInfo.load(container.der)])
    wrapper = asn1_pkcs12.Pfx(
        {"version": "v3", "auth_safe": {"content_type": "data", "content": auth_safe.dump()}}
    )
    loaded = pkcs12.load_pkcs12(wrapper.dump(), password.raw if password.given else None)
    keys: list[PrivateKeyTypes] = [loaded.key] if loaded.key is not None else []
    certs = ([loaded.cert] if loaded.cert else []) + list(loaded.additional_certs)
    return Opened(keys, [c.certificate for c in certs])


def _collect(
    bags: list[Bag],
    password: Password,
    bmp: bytes | None,
    key_ders: list[bytes],
    cert_ders: list[bytes],
    depth: int,
) -> None:
    if depth > MAX_NESTING:
        raise ValueError("SafeContents nested too deep")
    for bag in bags:
        value = bag.value()
        if bag.kind == KEY_BAG and value is not None:
            key_ders.append(value)
        elif bag.kind == SHROUDED_KEY_BAG and value is not None and bag.protection is not None:
            key_ders.append(_decrypt(bag.protection, value, password, bmp))
        elif bag.kind == CERT_BAG and value is not None:
            cert_ders.append(value)
        elif bag.kind == SAFE_CONTENTS:
            _collect(bag.children, password, bmp, key_ders, cert_ders, depth + 1)


def _decrypt(protection: Protection, ciphertext: bytes, password: Password, bmp: bytes | None) -> bytes:
    """Decrypt and unpad, trying the password encodings producers use."""
    for decryptor, block in _decryptors(protection, password, bmp):
        if not ciphertext or len(ciphertext) % block:
            raise ValueError("ciphertext length")
        plaintext = decryptor(ciphertext)
        unpadded = _unpad(plaintext, block)
        if unpadded is not None and _plausible(unpadded, len(unpadded) + 1, len(unpadded)):
            return unpadded
    raise ValueError("cannot decrypt")


def _decryptors(protection: Protection, password: Password, bmp: bytes | None) -> Any:
    """Yield (decrypt function, block size) for each password encoding worth trying."""
    if protection.scheme == "pbes2":
        cipher = protection.cipher_name
        if protection.mode != "cbc" or cipher not in {"aes", "tripledes"}:
            raise _Unsupported(cipher)
        if protection.hash_name not in PBKDF2_HASHES:
            raise _Unsupported(protection.hash_name)
        for candidate in password.byte_candidates():
            kdf = PBKDF2HMAC(
                _hash(protection.hash_name), protection.key_length, protection.salt, protection.iterations
            )
            key = kdf.derive(candidate)
            yield _cbc(algorithm_for(cipher, key), protection.iv), (16 if cipher == "aes" else 8)
    elif protection.scheme in ("pkcs12_sha1_tripledes_3key", "pkcs12_sha1_tripledes_2key"):
        salt, iterations, length = protection.salt, protection.iterations, protection.key_length
        for candidate in [bmp] if bmp is not None else password.bmp_candidates():
            key = pkcs12_kdf("sha1", candidate, salt, KEY_ID, iterations, length)
            iv = pkcs12_kdf("sha1", candidate, salt, IV_ID, iterations, 8)
            yield _cbc(TripleDES(key), iv), 8
    else:
        raise _Unsupported(protection.scheme)


def algorithm_for(cipher: str, key: bytes) -> Any:
    return algorithms.AES(key) if cipher == "aes" else TripleDES(key)


def _cbc(algorithm: Any, iv: bytes) -> Any:
    def decrypt(ciphertext: bytes) -> bytes:
        decryptor = Cipher(algorithm, modes.CBC(iv)).decryptor()
        return decryptor.update(ciphertext) + decryptor.finalize()

    return decrypt


def _unpad(plaintext: bytes, block: int) -> bytes | None:
    if not plaintext:
        return None
    pad = plaintext[-1]
    if pad < 1 or pad > block or plaintext[-pad:] != bytes([pad]) * pad:
        return None
    return plaintext[:-pad]


def _plausible(plaintext: bytes, max_total: int, min_total: int) -> bool:
    """Does ``plaintext`` start with a DER SEQUENCE whose size fits between the bounds?"""
    if len(plaintext) < 2 or plaintext[0] != 0x30:
        return False
    first = plaintext[1]
    if first < 0x80:
        header, length = 2, first
    elif 0x81 <= first <= 0x84 and len(plaintext) >= 2 + (first & 0x7F):
        count = first & 0x7F
        header, length = 2 + count, int.from_bytes(plaintext[2 : 2 + count], "big")
    else:
        return False
    return min_total <= header + length < max_total


_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),
    "sha224": hashes.SHA224(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


def _hash(name: str) -> hashes.HashAlgorithm:
    return _HASHES[name]


def load_private_key_quickly(der: bytes) -> PrivateKeyTypes:
    """Load a PKCS#8 key without OpenSSL's RSA primality tests, then check it cheaply.

    The portal never uses the key; it needs to know the key is intact and consistent.
    For RSA that means n = p*q and the CRT values agree with d and e.
    """
    key = serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.private_numbers()
        public = numbers.public_numbers
        p, q, d, e = numbers.p, numbers.q, numbers.d, public.e
        if (
            p < 3
            or q < 3
            or p * q != public.n
            or e < 3
            or numbers.dmp1 != d % (p - 1)
            or numbers.dmq1 != d % (q - 1)
            or (e * numbers.dmp1) % (p - 1) != 1
            or (e * numbers.dmq1) % (q - 1) != 1
            or (numbers.iqmp * q) % p != 1
        ):
            raise ValueError("inconsistent RSA key")
    return key


def spki(public_key: Any) -> bytes:
    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def open_library(structure: Structure, password: Password) -> Opened:
    """Open with cryptography's PKCS#12 loader (full RSA key validation)."""
    try:
        loaded = pkcs12.load_pkcs12(structure.data, password.raw if password.given else None)
    except PARSE_ERRORS:
        raise diagnose(structure, password) from None
    keys: list[PrivateKeyTypes] = [loaded.key] if loaded.key is not None else []
    certificates = [
        c.certificate for c in ([loaded.cert] if loaded.cert else []) + list(loaded.additional_certs)
    ]
    return Opened(keys, certificates)


# --- Telling a wrong password from a damaged file ----------------------------


def diagnose(structure: Structure, password: Password) -> ProblemError:
    """Opening failed: was it the password or the file?

    If the MAC verifies, the password is right and the file is damaged. Otherwise we
    decrypt the first block of each encrypted item: with the right password it starts
    with a DER SEQUENCE whose length fits the ciphertext, which a wrong password
    produces by chance with negligible probability, even when later blocks are damaged.
    """
    try:
        if structure.mac is not None and verify_mac(structure, password) is not None:
            return ProblemError("corrupt")
        items = _encrypted_items(structure)
        for protection, ciphertext in items:
            if _first_block_fits(protection, ciphertext, password):
                return ProblemError("corrupt")
    except PARSE_ERRORS:
        return ProblemError("corrupt")
    if not items and structure.mac is None:
        # Nothing checks the password, so the failure must be the file's.
        return ProblemError("corrupt")
    return ProblemError("wrong_password")


def _encrypted_items(structure: Structure) -> list[tuple[Protection, bytes]]:
    items: list[tuple[Protection, bytes]] = []
    for container in structure.containers:
        if container.protection is not None:
            items.append((container.protection, container.ciphertext))
        for bag in container.bags:
            if bag.kind == SHROUDED_KEY_BAG and bag.protection is not None:
                items.append((bag.protection, bag.value() or b""))
    return items


def _first_block_fits(protection: Protection, ciphertext: bytes, password: Password) -> bool:
    try:
        decryptors = list(_decryptors(protection, password, None))
    except _Unsupported:
        return False
    for decryptor, block in decryptors:
        if len(ciphertext) < block or len(ciphertext) % block:
            return False
        head = decryptor(ciphertext[: 2 * block] if len(ciphertext) >= 2 * block else ciphertext[:block])
        if _plausible(head, len(ciphertext), len(ciphertext) - block):
            return True
    return False

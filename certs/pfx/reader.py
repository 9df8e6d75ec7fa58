"""Reading PKCS#12 files: structure checks first, then opening them with the password.

``read_structure`` parses the ASN.1 with asn1crypto and checks every iteration count
against the cap before any key derivation runs. ``open_fast`` then verifies the MAC
and decrypts the bags with cryptography's primitives, loading the private key without
OpenSSL's expensive RSA primality checks (cheap arithmetic checks stand in for them).
Anything it does not recognise makes it return ``None`` so the caller falls back to
``open_library`` (cryptography's PKCS#12 loader). When opening fails, ``diagnose``
tells a wrong password from a damaged file.
"""

from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import parser
from asn1crypto import pkcs12 as asn1_pkcs12
from asn1crypto.algos import EncryptionAlgorithm
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.serialization import pkcs12

from certs.pfx import limits
from certs.pfx.kdf import IV_ID, KEY_ID, MAC_ID, bmp_password, pkcs12_kdf
from certs.pfx.problems import Problem, ProblemError

# Errors asn1crypto and cryptography raise on malformed input.
PARSE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    RecursionError,
    UnicodeError,
    AttributeError,
    UnsupportedAlgorithm,
)

_MAX_NESTING = 4
_PBMAC1 = "1.2.840.113549.1.5.14"
_PBKDF2_HASHES = {"sha1", "sha224", "sha256", "sha384", "sha512"}
_PKCS12_PBE = {
    # asn1crypto name -> (cipher label, key bytes, weak?)
    "pkcs12_sha1_tripledes_3key": ("3des-cbc", 24, False),
    "pkcs12_sha1_tripledes_2key": ("2key-3des-cbc", 16, True),
    "pkcs12_sha1_rc2_128": ("rc2-128-cbc", 16, False),
    "pkcs12_sha1_rc2_40": ("rc2-40-cbc", 5, True),
    "pkcs12_sha1_rc4_128": ("rc4-128", 16, True),
    "pkcs12_sha1_rc4_40": ("rc4-40", 5, True),
}


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


@dataclass(frozen=True)
class Protection:
    """How a container or key bag is encrypted, as the file declares it."""

    algorithm: str
    cipher: str
    iterations: int
    weak: bool
    scheme: str = field(default="", repr=False, compare=False)
    hash_name: str = field(default="", repr=False, compare=False)
    salt: bytes = field(default=b"", repr=False, compare=False)
    key_length: int = field(default=0, repr=False, compare=False)
    cipher_name: str = field(default="", repr=False, compare=False)
    mode: str = field(default="", repr=False, compare=False)
    iv: bytes = field(default=b"", repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "cipher": self.cipher, "iterations": self.iterations}


@dataclass(frozen=True)
class Mac:
    hash_name: str
    digest: bytes
    salt: bytes
    iterations: int

    def to_json(self) -> dict[str, Any]:
        return {"algorithm": f"hmac-{self.hash_name}", "iterations": self.iterations}


@dataclass
class Container:
    protection: Protection | None  # None: plain data
    ciphertext: bytes = b""
    bags: list[asn1_pkcs12.SafeBag] = field(default_factory=list)
    der: bytes = b""  # the ContentInfo as found in the file


@dataclass
class Structure:
    data: bytes
    auth_safe: bytes
    mac: Mac | None
    containers: list[Container]
    key_protections: list[Protection | None]
    warnings: list[Problem]

    @property
    def kdf(self) -> Protection | None:
        """What protects the private key (the first key bag seen)."""
        for protection in self.key_protections:
            return protection
        return None

    @property
    def visible_key_bags(self) -> int:
        return len(self.key_protections)


@dataclass
class Opened:
    keys: list[PrivateKeyTypes]
    certificates: list[x509.Certificate]


class _Unsupported(Exception):
    """The fast path does not handle this; the library loader may."""


# --- Structure --------------------------------------------------------------


def read_structure(data: bytes) -> Structure:
    if not data:
        raise ProblemError("empty_file")
    if len(data) > limits.max_file_bytes():
        raise ProblemError("file_too_large")
    _check_looks_like_pfx(data)
    try:
        return _read_structure(data)
    except PARSE_ERRORS as exc:
        raise ProblemError("corrupt") from exc


def _check_looks_like_pfx(data: bytes) -> None:
    """PFX = SEQUENCE { INTEGER 3, ... }. Anything else is some other kind of file."""
    if data[0] != 0x30:
        raise ProblemError("not_pkcs12")
    if len(data) < 2:
        raise ProblemError("corrupt")
    first = data[1]
    header = 2 if first <= 0x80 else 2 + (first & 0x7F)
    if first > 0x84:
        raise ProblemError("not_pkcs12")
    version = data[header : header + 3]
    if len(version) < 3:
        if b"\x02\x01\x03".startswith(version):
            raise ProblemError("corrupt")
        raise ProblemError("not_pkcs12")
    if version != b"\x02\x01\x03":
        raise ProblemError("not_pkcs12")


def _read_structure(data: bytes) -> Structure:
    warnings: list[Problem] = []
    _, _, _, header, contents, trailer = parser.parse(data)
    length = len(header) + len(contents) + len(trailer)
    der = length == len(data) and _is_der(data)
    pfx = asn1_pkcs12.Pfx.load(data[:length])
    auth_safe_info = pfx["auth_safe"]
    if auth_safe_info["content_type"].native != "data":
        raise ProblemError.of("unsupported_algorithm", "public-key integrity mode")
    auth_safe = auth_safe_info["content"].native
    if not isinstance(auth_safe, bytes):
        raise ValueError("authSafe is not an OCTET STRING")
    der = der and _is_der(auth_safe)

    mac = _read_mac(pfx["mac_data"]) if pfx["mac_data"].native is not None else None

    containers: list[Container] = []
    key_protections: list[Protection | None] = []
    for info in asn1_pkcs12.AuthenticatedSafe.load(auth_safe):
        content_type = info["content_type"].native
        if content_type == "data":
            payload = info["content"].native
            if not isinstance(payload, bytes):
                raise ValueError("SafeContents is not an OCTET STRING")
            der = der and _is_der(payload)
            bags = list(asn1_pkcs12.SafeContents.load(payload))
            key_protections += walk_bags(bags)
            containers.append(Container(None, bags=bags))
        elif content_type == "encrypted_data":
            encrypted = info["content"]["encrypted_content_info"]
            protection = describe_protection(encrypted["content_encryption_algorithm"])
            ciphertext = encrypted["encrypted_content"].native
            if ciphertext:
                containers.append(Container(protection, ciphertext=ciphertext, der=info.dump()))
        else:
            raise ProblemError.of("unsupported_algorithm", f"{content_type} content")

    protections = [c.protection for c in containers] + key_protections
    if any(p is None or p.weak for p in key_protections) or any(p and p.weak for p in protections):
        warnings.append(Problem.of("weak_encryption"))
    if not der:
        warnings.append(Problem.of("not_der"))
    return Structure(data, auth_safe, mac, containers, key_protections, warnings)


def _read_mac(mac_data: asn1_pkcs12.MacData) -> Mac:
    algorithm = mac_data["mac"]["digest_algorithm"]["algorithm"]
    name = algorithm.native
    if algorithm.dotted == _PBMAC1 or name not in _PBKDF2_HASHES:
        raise ProblemError.of("unsupported_algorithm", f"MAC {name}")
    iterations = _check_iterations(mac_data["iterations"].native)
    return Mac(name, mac_data["mac"]["digest"].native, mac_data["mac_salt"].native, iterations)


def _check_iterations(value: object) -> int:
    if not isinstance(value, int) or value < 1:
        raise ValueError("bad iteration count")
    if value > limits.max_kdf_iterations():
        raise ProblemError.of("kdf_iterations_too_high", f"{value:,} iterations")
    return value


def describe_protection(algorithm: EncryptionAlgorithm) -> Protection:
    protection = _describe(algorithm.dump())
    _check_iterations(protection.iterations)
    return protection


@functools.lru_cache(maxsize=64)
def _describe(der: bytes) -> Protection:
    """Read an encryption AlgorithmIdentifier once (a file mentions each one several times)."""
    algorithm = EncryptionAlgorithm.load(der)
    name = algorithm["algorithm"].native
    if name == "pbes2":
        if algorithm.kdf != "pbkdf2":
            raise ProblemError.of("unsupported_algorithm", f"PBES2 with {algorithm.kdf}")
        cipher = algorithm.encryption_cipher
        mode = algorithm.encryption_mode
        bits = 8 * algorithm.key_length
        label = {"aes": f"aes-{bits}-{mode}", "tripledes": f"3des-{mode}"}.get(
            cipher, f"{cipher}-{bits}-{mode}"
        )
        weak = cipher == "des" or (cipher == "rc2" and bits < 128)
        return Protection(
            f"pbkdf2-{algorithm.kdf_hmac}",
            label,
            _iterations(algorithm.kdf_iterations),
            weak,
            scheme=name,
            hash_name=algorithm.kdf_hmac,
            salt=algorithm.kdf_salt,
            key_length=algorithm.key_length,
            cipher_name=cipher,
            mode=mode,
            iv=algorithm.encryption_iv if cipher in {"aes", "tripledes"} else b"",
        )
    if name in _PKCS12_PBE:
        label, length, weak = _PKCS12_PBE[name]
        return Protection(
            "pkcs12-sha1",
            label,
            _iterations(algorithm.kdf_iterations),
            weak,
            scheme=name,
            hash_name="sha1",
            salt=algorithm.kdf_salt,
            key_length=length,
        )
    if isinstance(name, str) and name.startswith("pbes1_"):
        _, digest, cipher = name.split("_", 2)
        return Protection(
            f"pbes1-{digest}", f"{cipher}-cbc", _iterations(algorithm.kdf_iterations), True, name
        )
    raise ProblemError.of("unsupported_algorithm", str(name))


def _iterations(value: object) -> int:
    if not isinstance(value, int) or value < 1:
        raise ValueError("bad iteration count")
    return value


def walk_bags(bags: list[asn1_pkcs12.SafeBag], depth: int = 0) -> list[Protection | None]:
    """Check every key bag's iteration count; return the key bags' protections in order."""
    if depth > _MAX_NESTING:
        raise ValueError("SafeContents nested too deep")
    found: list[Protection | None] = []
    for bag in bags:
        kind = bag["bag_id"].native
        if kind == "key_bag":
            found.append(None)
        elif kind == "pkcs8_shrouded_key_bag":
            found.append(describe_protection(bag["bag_value"]["encryption_algorithm"]))
        elif kind == "safe_contents":
            found += walk_bags(list(bag["bag_value"]), depth + 1)
    return found


def _is_der(data: bytes, limit: int = 20_000) -> bool:
    """True when every TLV reachable through constructed values uses DER lengths.

    Iterative and bounded: hostile nesting cannot recurse or loop for long.
    """
    stack = [(0, len(data))]
    seen = 0
    while stack:
        pos, end = stack.pop()
        while pos < end:
            seen += 1
            if seen > limit or end - pos < 2:
                return False
            tag = data[pos]
            if tag & 0x1F == 0x1F:
                return True  # high tag numbers do not occur in PKCS#12; leave it to the parser
            first = data[pos + 1]
            if first == 0x80:
                return False  # indefinite length
            if first < 0x80:
                length, header = first, 2
            else:
                count = first & 0x7F
                raw = data[pos + 2 : pos + 2 + count]
                if len(raw) < count or raw[0] == 0 or count > 4:
                    return False
                length, header = int.from_bytes(raw, "big"), 2 + count
                if length < 0x80:
                    return False  # non-minimal length
            start, stop = pos + header, pos + header + length
            if stop > end:
                return False
            if tag == 0x24:
                return False  # constructed OCTET STRING
            if tag & 0x20:
                stack.append((start, stop))
            pos = stop
    return True


# --- Opening ----------------------------------------------------------------


def verify_mac(structure: Structure, password: Password) -> bytes | None:
    """The BMP password form that verifies the MAC, or None."""
    mac = structure.mac
    if mac is None:
        return None
    size = hashes.Hash(_hash(mac.hash_name)).algorithm.digest_size
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
            bags = list(asn1_pkcs12.SafeContents.load(plaintext))
            walk_bags(bags)  # iteration caps for key bags inside encrypted containers
        _collect(bags, password, bmp, key_ders, cert_ders, 0)
    keys += [load_private_key_quickly(der) for der in key_ders]
    certificates = [x509.load_der_x509_certificate(der) for der in cert_ders] + library_certs
    return Opened(keys, certificates)


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
    bags: list[asn1_pkcs12.SafeBag],
    password: Password,
    bmp: bytes | None,
    key_ders: list[bytes],
    cert_ders: list[bytes],
    depth: int,
) -> None:
    if depth > _MAX_NESTING:
        raise ValueError("SafeContents nested too deep")
    for bag in bags:
        kind = bag["bag_id"].native
        value = bag["bag_value"]
        if kind == "key_bag":
            key_ders.append(value.untag().dump())
        elif kind == "pkcs8_shrouded_key_bag":
            protection = describe_protection(value["encryption_algorithm"])
            key_ders.append(_decrypt(protection, value["encrypted_data"].native, password, bmp))
        elif kind == "cert_bag":
            if value["cert_id"].native == "x509":
                cert_ders.append(bytes(value["cert_value"]))
        elif kind == "safe_contents":
            _collect(list(value), password, bmp, key_ders, cert_ders, depth + 1)


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
        if protection.hash_name not in _PBKDF2_HASHES:
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


def _hash(name: str) -> hashes.HashAlgorithm:
    return {
        "sha1": hashes.SHA1(),
        "sha224": hashes.SHA224(),
        "sha256": hashes.SHA256(),
        "sha384": hashes.SHA384(),
        "sha512": hashes.SHA512(),
    }[name]


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
            if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                value = bag["bag_value"]
                items.append(
                    (describe_protection(value["encryption_algorithm"]), value["encrypted_data"].native)
                )
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

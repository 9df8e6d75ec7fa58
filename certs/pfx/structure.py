"""Reading a PKCS#12 file's structure, checking every iteration count before any key derivation.

``read_structure`` first tries the direct DER walk (certs/pfx/der.py), which knows the layouts
real producers write; anything else is parsed with asn1crypto, which also tells a damaged file
from an unsupported one.
"""

from __future__ import annotations

import functools

from asn1crypto import parser
from asn1crypto import pkcs12 as asn1_pkcs12
from asn1crypto.algos import EncryptionAlgorithm
from cryptography.exceptions import UnsupportedAlgorithm

from certs.pfx import der, limits
from certs.pfx.model import (
    CERT_BAG,
    KEY_BAG,
    MAX_NESTING,
    SAFE_CONTENTS,
    SHROUDED_KEY_BAG,
    Bag,
    Container,
    Mac,
    Protection,
    Structure,
    key_protections,
    structure_warnings,
)
from certs.pfx.problems import ProblemError

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

_PBMAC1 = "1.2.840.113549.1.5.14"
PBKDF2_HASHES = {"sha1", "sha224", "sha256", "sha384", "sha512"}
_PKCS12_PBE = {
    # asn1crypto name -> (cipher label, key bytes, weak?)
    "pkcs12_sha1_tripledes_3key": ("3des-cbc", 24, False),
    "pkcs12_sha1_tripledes_2key": ("2key-3des-cbc", 16, True),
    "pkcs12_sha1_rc2_128": ("rc2-128-cbc", 16, False),
    "pkcs12_sha1_rc2_40": ("rc2-40-cbc", 5, True),
    "pkcs12_sha1_rc4_128": ("rc4-128", 16, True),
    "pkcs12_sha1_rc4_40": ("rc4-40", 5, True),
}


def read_structure(data: bytes) -> Structure:
    if not data:
        raise ProblemError("empty_file")
    if len(data) > limits.max_file_bytes():
        raise ProblemError("file_too_large")
    _check_looks_like_pfx(data)
    structure = der.read_pfx(data, limits.max_kdf_iterations())
    if structure is not None:
        return structure
    try:
        return read_with_asn1(data)
    except PARSE_ERRORS as exc:
        raise ProblemError("corrupt") from exc


def read_bags(plaintext: bytes) -> list[Bag]:
    """The bags of a decrypted container, their key bags' iteration counts checked."""
    bags = der.read_safe_contents(plaintext, limits.max_kdf_iterations())
    if bags is None:
        bags = asn1_bags(list(asn1_pkcs12.SafeContents.load(plaintext)))
    return bags


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


def read_with_asn1(data: bytes) -> Structure:
    """The asn1crypto reading: every layout, BER included."""
    _, _, _, header, contents, trailer = parser.parse(data)
    length = len(header) + len(contents) + len(trailer)
    is_der = length == len(data) and _is_der(data)
    pfx = asn1_pkcs12.Pfx.load(data[:length])
    auth_safe_info = pfx["auth_safe"]
    if auth_safe_info["content_type"].native != "data":
        raise ProblemError.of("unsupported_algorithm", "public-key integrity mode")
    auth_safe = auth_safe_info["content"].native
    if not isinstance(auth_safe, bytes):
        raise ValueError("authSafe is not an OCTET STRING")
    is_der = is_der and _is_der(auth_safe)

    mac = _read_mac(pfx["mac_data"]) if pfx["mac_data"].native is not None else None

    containers: list[Container] = []
    keys: list[Protection | None] = []
    for info in asn1_pkcs12.AuthenticatedSafe.load(auth_safe):
        content_type = info["content_type"].native
        if content_type == "data":
            payload = info["content"].native
            if not isinstance(payload, bytes):
                raise ValueError("SafeContents is not an OCTET STRING")
            is_der = is_der and _is_der(payload)
            bags = asn1_bags(list(asn1_pkcs12.SafeContents.load(payload)))
            keys += key_protections(bags)
            containers.append(Container(None, bags=bags))
        elif content_type == "encrypted_data":
            encrypted = info["content"]["encrypted_content_info"]
            protection = describe_protection(encrypted["content_encryption_algorithm"])
            ciphertext = encrypted["encrypted_content"].native
            if ciphertext:
                containers.append(Container(protection, ciphertext=ciphertext, der=info.dump()))
        else:
            raise ProblemError.of("unsupported_algorithm", f"{content_type} content")

    return Structure(data, auth_safe, mac, containers, keys, structure_warnings(containers, keys, is_der))


def _read_mac(mac_data: asn1_pkcs12.MacData) -> Mac:
    algorithm = mac_data["mac"]["digest_algorithm"]["algorithm"]
    name = algorithm.native
    if algorithm.dotted == _PBMAC1 or name not in PBKDF2_HASHES:
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


class _Asn1Bag(Bag):
    """A bag parsed by asn1crypto: kind and protection now, the value when opening asks for it
    (so a bad value makes opening fall back to the library, as it always has)."""

    __slots__ = ("_bag",)

    def __init__(self, bag: asn1_pkcs12.SafeBag, depth: int) -> None:
        kind = bag["bag_id"].native
        protection = None
        children = None
        if kind == SHROUDED_KEY_BAG:
            protection = describe_protection(bag["bag_value"]["encryption_algorithm"])
        elif kind == SAFE_CONTENTS:
            children = asn1_bags(list(bag["bag_value"]), depth + 1)
        super().__init__(kind, protection=protection, children=children)
        self._bag = bag

    def value(self) -> bytes | None:
        value = self._bag["bag_value"]
        if self.kind == KEY_BAG:
            return bytes(value.untag().dump())
        if self.kind == SHROUDED_KEY_BAG:
            return bytes(value["encrypted_data"].native)
        if self.kind == CERT_BAG and value["cert_id"].native == "x509":
            return bytes(value["cert_value"])
        return None


def asn1_bags(bags: list[asn1_pkcs12.SafeBag], depth: int = 0) -> list[Bag]:
    """Wrap parsed bags, checking every shrouded key bag's iteration count."""
    if depth > MAX_NESTING:
        raise ValueError("SafeContents nested too deep")
    return [_Asn1Bag(bag, depth) for bag in bags]


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

"""A direct DER walk over the PKCS#12 layouts real producers write.

Reading a file with asn1crypto builds an object per ASN.1 value and costs about as much as
the cryptography of opening it. Nearly every file the portal sees is DER in one of a few
layouts (OpenSSL, Windows, Java, cryptography), so this module walks those bytes directly
and takes only what opening needs.

It only recognises: anything outside what it knows (BER, an algorithm it does not list, an
iteration count over the cap, a bag type other than key, shrouded key, certificate or nested
contents, a value it cannot place) makes it return None, and the caller reads the file with
asn1crypto, which decides what is wrong with it. So everything it accepts is read the same
way by both, which the tests check on every file of the corpus and on mutated files.
"""

from __future__ import annotations

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

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
EXPLICIT_0 = 0xA0
IMPLICIT_0 = 0x80

# A file holds about a hundred values outside its encrypted parts; beyond this, let asn1crypto decide.
_MAX_VALUES = 2_000


def _oid(dotted: str) -> bytes:
    """The content octets of an OBJECT IDENTIFIER."""
    first, second, *rest = (int(part) for part in dotted.split("."))
    out = bytearray([40 * first + second])
    for number in rest:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.append(0x80 | (number & 0x7F))
            number >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


_DATA = _oid("1.2.840.113549.1.7.1")
_ENCRYPTED_DATA = _oid("1.2.840.113549.1.7.6")
_X509_CERTIFICATE = _oid("1.2.840.113549.1.9.22.1")
_PBES2 = _oid("1.2.840.113549.1.5.13")
_PBKDF2 = _oid("1.2.840.113549.1.5.12")
_BAGS = {
    _oid("1.2.840.113549.1.12.10.1.1"): KEY_BAG,
    _oid("1.2.840.113549.1.12.10.1.2"): SHROUDED_KEY_BAG,
    _oid("1.2.840.113549.1.12.10.1.3"): CERT_BAG,
    _oid("1.2.840.113549.1.12.10.1.6"): SAFE_CONTENTS,
}
_DIGESTS = {
    _oid("1.3.14.3.2.26"): "sha1",
    _oid("2.16.840.1.101.3.4.2.4"): "sha224",
    _oid("2.16.840.1.101.3.4.2.1"): "sha256",
    _oid("2.16.840.1.101.3.4.2.2"): "sha384",
    _oid("2.16.840.1.101.3.4.2.3"): "sha512",
}
_HMACS = {
    _oid("1.2.840.113549.2.7"): "sha1",
    _oid("1.2.840.113549.2.8"): "sha224",
    _oid("1.2.840.113549.2.9"): "sha256",
    _oid("1.2.840.113549.2.10"): "sha384",
    _oid("1.2.840.113549.2.11"): "sha512",
}
# PBES2 encryption schemes: OID -> (cipher, key bytes, label)
_CIPHERS = {
    _oid("2.16.840.1.101.3.4.1.2"): ("aes", 16, "aes-128-cbc"),
    _oid("2.16.840.1.101.3.4.1.22"): ("aes", 24, "aes-192-cbc"),
    _oid("2.16.840.1.101.3.4.1.42"): ("aes", 32, "aes-256-cbc"),
    _oid("1.2.840.113549.3.7"): ("tripledes", 24, "3des-cbc"),
}
# PKCS#12 PBE: OID -> (scheme, cipher label, key bytes, weak?)
_PKCS12_PBE = {
    _oid("1.2.840.113549.1.12.1.1"): ("pkcs12_sha1_rc4_128", "rc4-128", 16, True),
    _oid("1.2.840.113549.1.12.1.2"): ("pkcs12_sha1_rc4_40", "rc4-40", 5, True),
    _oid("1.2.840.113549.1.12.1.3"): ("pkcs12_sha1_tripledes_3key", "3des-cbc", 24, False),
    _oid("1.2.840.113549.1.12.1.4"): ("pkcs12_sha1_tripledes_2key", "2key-3des-cbc", 16, True),
    _oid("1.2.840.113549.1.12.1.5"): ("pkcs12_sha1_rc2_128", "rc2-128-cbc", 16, False),
    _oid("1.2.840.113549.1.12.1.6"): ("pkcs12_sha1_rc2_40", "rc2-40-cbc", 5, True),
}


class Unrecognised(Exception):
    """Not a layout this walk knows; asn1crypto reads the file instead."""


def read_tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start, stop) of the DER value at ``pos``, which must end by ``end``.

    Refuses what the asn1crypto reading calls not DER (indefinite, long-form or over-long
    lengths, a constructed OCTET STRING), and high tag numbers, which PKCS#12 does not use.
    """
    if end - pos < 2:
        raise Unrecognised
    tag = data[pos]
    first = data[pos + 1]
    if first < 0x80:
        start = pos + 2
        stop = start + first
    else:
        count = first & 0x7F
        start = pos + 2 + count
        if not 0 < count <= 4 or start > end or data[pos + 2] == 0:
            raise Unrecognised
        length = int.from_bytes(data[pos + 2 : start], "big")
        if length < 0x80:
            raise Unrecognised
        stop = start + length
    if stop > end or tag & 0x1F == 0x1F or tag == 0x24:
        raise Unrecognised
    return tag, start, stop


def utf8_string(value: bytes) -> str | None:
    """The text of a UTF8String (how a certificate carries a UPN), or None when ``value`` is not one."""
    try:
        tag, start, stop = read_tlv(value, 0, len(value))
    except Unrecognised:
        return None
    if tag != 0x0C or stop != len(value):
        return None
    try:
        return value[start:stop].decode("utf-8")
    except UnicodeDecodeError:
        return None


def certificate_issuer(der: bytes) -> bytes | None:
    """The issuer Name (DER) of an X.509 certificate's DER, or None when it is not where it belongs."""
    try:
        _, body, end = read_tlv(der, 0, len(der))
        _, tbs, tbs_end = read_tlv(der, body, end)
        tag, _, pos = read_tlv(der, tbs, tbs_end)
        if tag == EXPLICIT_0:  # version; the serial number follows
            _, _, pos = read_tlv(der, pos, tbs_end)
        _, _, pos = read_tlv(der, pos, tbs_end)  # signature algorithm
        tag, _, stop = read_tlv(der, pos, tbs_end)
    except (Unrecognised, IndexError):
        return None
    return der[pos:stop] if tag == SEQUENCE else None


class _Reader:
    """The walk over one buffer; counts what it reads so hostile input stays cheap."""

    __slots__ = ("data", "max_iterations", "seen")

    def __init__(self, data: bytes, max_iterations: int) -> None:
        self.data = data
        self.max_iterations = max_iterations
        self.seen = 0

    def expect(self, tag: int, pos: int, end: int) -> tuple[int, int]:
        """(start, stop) of the value at ``pos``, which must have ``tag`` (``read_tlv``, inlined:
        this runs for every value of every file)."""
        self.seen += 1
        data = self.data
        if self.seen > _MAX_VALUES or end - pos < 2 or data[pos] != tag:
            raise Unrecognised
        first = data[pos + 1]
        if first < 0x80:
            start = pos + 2
            stop = start + first
        else:
            count = first & 0x7F
            start = pos + 2 + count
            if not 0 < count <= 4 or start > end or data[pos + 2] == 0:
                raise Unrecognised
            length = int.from_bytes(data[pos + 2 : start], "big")
            if length < 0x80:
                raise Unrecognised
            stop = start + length
        if stop > end:
            raise Unrecognised
        return start, stop

    def only(self, tag: int, pos: int, end: int) -> tuple[int, int]:
        """(start, stop) of the single value filling ``pos:end``."""
        start, stop = self.expect(tag, pos, end)
        if stop != end:
            raise Unrecognised
        return start, stop

    def integer(self, pos: int, end: int) -> tuple[int, int]:
        start, stop = self.expect(INTEGER, pos, end)
        if start == stop:
            raise Unrecognised
        return int.from_bytes(self.data[start:stop], "big", signed=True), stop

    def iterations(self, pos: int, end: int) -> tuple[int, int]:
        value, stop = self.integer(pos, end)
        if not 1 <= value <= self.max_iterations:
            raise Unrecognised
        return value, stop

    def octets(self, pos: int, end: int) -> tuple[bytes, int]:
        start, stop = self.expect(OCTET_STRING, pos, end)
        return self.data[start:stop], stop

    def oid(self, pos: int, end: int) -> tuple[bytes, int]:
        start, stop = self.expect(OID, pos, end)
        return self.data[start:stop], stop

    def der_only(self, start: int, stop: int) -> None:
        """Values this walk does not read (attributes, key contents) must still be DER throughout."""
        stack = [(start, stop)]
        while stack:
            pos, end = stack.pop()
            while pos < end:
                self.seen += 1
                if self.seen > _MAX_VALUES:
                    raise Unrecognised
                tag, inner, pos = read_tlv(self.data, pos, end)
                if tag & 0x20:
                    stack.append((inner, pos))

    def null_or_nothing(self, pos: int, end: int) -> None:
        if pos != end:
            start, _ = self.only(NULL, pos, end)
            if start != end:
                raise Unrecognised

    # --- The file's outer layers -------------------------------------------------

    def pfx(self) -> Structure:
        data = self.data
        body, end = self.expect(SEQUENCE, 0, len(data))
        if end != len(data):
            raise Unrecognised  # trailing bytes: the slow reader reports them as not DER
        version, pos = self.integer(body, end)
        if version != 3:
            raise Unrecognised
        info, pos = self.expect(SEQUENCE, pos, end)
        content_type, inner = self.oid(info, pos)
        if content_type != _DATA:
            raise Unrecognised
        explicit, _ = self.only(EXPLICIT_0, inner, pos)
        start, stop = self.only(OCTET_STRING, explicit, pos)
        mac = None
        if pos < end:
            mac_body, mac_end = self.only(SEQUENCE, pos, end)
            mac = self.mac(mac_body, mac_end)
        auth_safe = data[start:stop]
        containers, keys = self.authenticated_safe(start, stop)
        return Structure(data, auth_safe, mac, containers, keys, structure_warnings(containers, keys, True))

    def mac(self, pos: int, end: int) -> Mac:
        digest_info, after = self.expect(SEQUENCE, pos, end)
        algorithm, digest_start = self.expect(SEQUENCE, digest_info, after)
        oid, params = self.oid(algorithm, digest_start)
        self.null_or_nothing(params, digest_start)
        name = _DIGESTS.get(oid)
        if name is None:
            raise Unrecognised
        digest, digest_end = self.octets(digest_start, after)
        if digest_end != after:
            raise Unrecognised
        salt, pos = self.octets(after, end)
        iterations = 1
        if pos < end:
            iterations, pos = self.iterations(pos, end)
        if pos != end:
            raise Unrecognised
        return Mac(name, digest, salt, iterations)

    def authenticated_safe(self, start: int, stop: int) -> tuple[list[Container], list[Protection | None]]:
        pos, end = self.only(SEQUENCE, start, stop)
        containers: list[Container] = []
        keys: list[Protection | None] = []
        while pos < end:
            info, next_pos = self.expect(SEQUENCE, pos, end)
            content_type, inner = self.oid(info, next_pos)
            explicit, _ = self.only(EXPLICIT_0, inner, next_pos)
            if content_type == _DATA:
                payload, payload_end = self.only(OCTET_STRING, explicit, next_pos)
                bags = self.safe_contents(payload, payload_end, 0)
                keys += key_protections(bags)
                containers.append(Container(None, bags=bags))
            elif content_type == _ENCRYPTED_DATA:
                container = self.encrypted_data(explicit, next_pos, self.data[pos:next_pos])
                if container is not None:
                    containers.append(container)
            else:
                raise Unrecognised
            pos = next_pos
        return containers, keys

    def encrypted_data(self, pos: int, end: int, der: bytes) -> Container | None:
        body, body_end = self.only(SEQUENCE, pos, end)
        _, pos = self.integer(body, body_end)
        info, info_end = self.only(SEQUENCE, pos, body_end)
        _, pos = self.oid(info, info_end)
        algorithm_end = self.expect(SEQUENCE, pos, info_end)[1]
        protection = self.protection(pos, algorithm_end)
        if algorithm_end == info_end:
            return None  # no encrypted content
        start, stop = self.only(IMPLICIT_0, algorithm_end, info_end)
        if start == stop:
            return None
        return Container(protection, ciphertext=self.data[start:stop], der=der)

    # --- Bags ----------------------------------------------------------------------

    def safe_contents(self, start: int, stop: int, depth: int) -> list[Bag]:
        if depth > MAX_NESTING:
            raise Unrecognised
        pos, end = self.only(SEQUENCE, start, stop)
        bags: list[Bag] = []
        while pos < end:
            body, next_pos = self.expect(SEQUENCE, pos, end)
            oid, value_at = self.oid(body, next_pos)
            kind = _BAGS.get(oid)
            if kind is None:
                raise Unrecognised
            value, value_end = self.expect(EXPLICIT_0, value_at, next_pos)
            if value_end != next_pos:
                attributes, attributes_end = self.only(SET, value_end, next_pos)
                self.der_only(attributes, attributes_end)
            bags.append(self.bag(kind, value, value_end, depth))
            pos = next_pos
        return bags

    def bag(self, kind: str, start: int, stop: int, depth: int) -> Bag:
        inner, end = self.only(SEQUENCE, start, stop)
        if kind == KEY_BAG:
            self.der_only(inner, end)
            return Bag(kind, self.data[start:stop])
        if kind == SHROUDED_KEY_BAG:
            algorithm_end = self.expect(SEQUENCE, inner, end)[1]
            protection = self.protection(inner, algorithm_end)
            encrypted, pos = self.octets(algorithm_end, end)
            if pos != end:
                raise Unrecognised
            return Bag(kind, encrypted, protection=protection)
        if kind == CERT_BAG:
            cert_type, pos = self.oid(inner, end)
            if cert_type != _X509_CERTIFICATE:
                raise Unrecognised
            explicit, _ = self.only(EXPLICIT_0, pos, end)
            certificate, _ = self.only(OCTET_STRING, explicit, end)
            self.only(SEQUENCE, certificate, end)  # asn1crypto parses the certificate's outer layer here
            return Bag(kind, self.data[certificate:end])
        return Bag(kind, children=self.safe_contents(start, stop, depth + 1))

    # --- Algorithms ------------------------------------------------------------------

    def protection(self, pos: int, end: int) -> Protection:
        """An encryption AlgorithmIdentifier (the SEQUENCE at ``pos``), as the asn1crypto reading describes it."""
        body, end = self.only(SEQUENCE, pos, end)
        oid, params = self.oid(body, end)
        if oid == _PBES2:
            return self.pbes2(params, end)
        pbe = _PKCS12_PBE.get(oid)
        if pbe is None:
            raise Unrecognised
        scheme, label, length, weak = pbe
        inner, _ = self.only(SEQUENCE, params, end)
        salt, pos = self.octets(inner, end)
        iterations, pos = self.iterations(pos, end)
        if pos != end:
            raise Unrecognised
        return Protection(
            "pkcs12-sha1",
            label,
            iterations,
            weak,
            scheme=scheme,
            hash_name="sha1",
            salt=salt,
            key_length=length,
        )

    def pbes2(self, pos: int, end: int) -> Protection:
        body, end = self.only(SEQUENCE, pos, end)
        kdf, scheme_at = self.expect(SEQUENCE, body, end)
        kdf_oid, kdf_params = self.oid(kdf, scheme_at)
        if kdf_oid != _PBKDF2:
            raise Unrecognised
        params, _ = self.only(SEQUENCE, kdf_params, scheme_at)
        salt, pos = self.octets(params, scheme_at)
        iterations, pos = self.iterations(pos, scheme_at)
        key_length = None
        hash_name = "sha1"  # the PRF's default
        if pos < scheme_at and self.data[pos] == INTEGER:
            key_length, pos = self.integer(pos, scheme_at)
        if pos < scheme_at:
            prf, _ = self.only(SEQUENCE, pos, scheme_at)
            hmac_oid, hmac_params = self.oid(prf, scheme_at)
            self.null_or_nothing(hmac_params, scheme_at)
            hash_name = _HMACS.get(hmac_oid, "")
            if not hash_name:
                raise Unrecognised
        scheme, _ = self.only(SEQUENCE, scheme_at, end)
        cipher_oid, iv_at = self.oid(scheme, end)
        if cipher_oid not in _CIPHERS:
            raise Unrecognised
        cipher, length, label = _CIPHERS[cipher_oid]
        if key_length is not None and key_length != length:
            raise Unrecognised
        iv, iv_end = self.octets(iv_at, end)
        if iv_end != end:
            raise Unrecognised
        return Protection(
            f"pbkdf2-{hash_name}",
            label,
            iterations,
            False,
            scheme="pbes2",
            hash_name=hash_name,
            salt=salt,
            key_length=length,
            cipher_name=cipher,
            mode="cbc",
            iv=iv,
        )


def read_pfx(data: bytes, max_iterations: int) -> Structure | None:
    """The file's structure when it is DER in a layout this walk knows, else None."""
    try:
        return _Reader(data, max_iterations).pfx()
    except (Unrecognised, IndexError):
        return None


def read_safe_contents(data: bytes, max_iterations: int) -> list[Bag] | None:
    """The bags of a decrypted SafeContents when this walk knows its layout, else None."""
    try:
        return _Reader(data, max_iterations).safe_contents(0, len(data), 0)
    except (Unrecognised, IndexError):
        return None

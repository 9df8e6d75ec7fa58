"""Inspecting a PFX file: what it holds, and every problem an admin should know about."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from certs.pfx import limits
from certs.pfx.der import certificate_issuer, utf8_string
from certs.pfx.encrypt import DEFAULT_PADDING, PasswordEncoding, max_password_bytes, password_bytes
from certs.pfx.problems import ERROR, Problem, ProblemError
from certs.pfx.reader import Opened, Password, open_fast, open_library, spki
from certs.pfx.structure import PARSE_ERRORS, read_structure

Engine = Literal["fast", "library"]

PURPOSES = ("unassigned", "smimeEncryption", "smimeSigning", "vpn", "wifi")
SMIME_PURPOSES = {"smimeEncryption", "smimeSigning"}
UPN_OID = "1.3.6.1.4.1.311.20.2.3"
_NAMES = {NameOID.EMAIL_ADDRESS: "emailAddress"}
_EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    "2.5.29.37.0": "anyExtendedKeyUsage",
    "1.3.6.1.4.1.311.20.2.2": "smartcardLogon",
    "1.3.6.1.4.1.311.10.3.4": "encryptingFileSystem",
}


def normalise_purpose(purpose: str | None) -> str | None:
    if purpose is None:
        return None
    for name in PURPOSES:
        if purpose.lower() == name.lower():
            return name
    raise ProblemError("bad_purpose")


@dataclass(frozen=True)
class Inspection:
    ok: bool
    problems: tuple[Problem, ...]
    thumbprint: str | None = None
    subject: str | None = None
    issuer: str | None = None
    serial: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    emails: tuple[str, ...] = ()
    upns: tuple[str, ...] = ()
    ekus: tuple[str, ...] = ()
    key: dict[str, Any] | None = None
    # SHA-256 (hex) of the certificate's SubjectPublicKeyInfo: equal for every certificate of one key pair.
    key_fingerprint: str | None = None
    chain_length: int = 0
    kdf: dict[str, Any] | None = None
    mac: dict[str, Any] | None = None
    certificate: x509.Certificate | None = field(default=None, repr=False, compare=False)

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == ERROR)

    def has(self, code: str) -> bool:
        return any(p.code == code for p in self.problems)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (dates as ISO 8601 UTC with Z)."""
        return {
            "ok": self.ok,
            "thumbprint": self.thumbprint,
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "not_before": iso_utc(self.not_before),
            "not_after": iso_utc(self.not_after),
            "emails": list(self.emails),
            "upns": list(self.upns),
            "ekus": list(self.ekus),
            "key": self.key,
            "key_fingerprint": self.key_fingerprint,
            "chain_length": self.chain_length,
            "kdf": self.kdf,
            "mac": self.mac,
            "problems": [p.to_json() for p in self.problems],
        }


def iso_utc(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def inspect_pfx(
    data: bytes,
    password: str | bytes | None,
    *,
    upn: str | None = None,
    purpose: str | None = None,
    now: datetime | None = None,
    public_key: rsa.RSAPublicKey | None = None,
    padding: str = DEFAULT_PADDING,
    password_encoding: PasswordEncoding = "strict",
    engine: Engine = "fast",
) -> Inspection:
    """Inspect a PFX file. Never raises for bad file contents: problems are in the result.

    ``public_key``/``padding`` add the password-length check for that connector key.
    ``engine="library"`` opens the file with cryptography's loader only (slow; for comparison).
    Raises ProblemError only for bad arguments (``purpose``, ``padding``).
    """
    purpose = normalise_purpose(purpose)
    now = now or datetime.now(UTC)
    pw = Password.of(password)
    problems: list[Problem] = list(_password_problems(password, public_key, padding, password_encoding))
    try:
        structure = read_structure(data)
    except ProblemError as exc:
        return _result([exc.problem, *problems])
    problems += structure.warnings
    kdf = structure.kdf.to_json() if structure.kdf else None
    mac = structure.mac.to_json() if structure.mac else None
    try:
        opened = (open_fast(structure, pw) if engine == "fast" else None) or open_library(structure, pw)
    except ProblemError as exc:
        return _result([exc.problem, *problems], kdf=kdf, mac=mac)
    key_bags = structure.visible_key_bags if engine == "library" else 0
    try:
        return _describe(opened, problems, key_bags, upn=upn, purpose=purpose, now=now, kdf=kdf, mac=mac)
    except PARSE_ERRORS:
        return _result([Problem.of("corrupt"), *problems], kdf=kdf, mac=mac)


def _password_problems(
    password: str | bytes | None,
    public_key: rsa.RSAPublicKey | None,
    padding: str,
    encoding: PasswordEncoding,
) -> list[Problem]:
    try:
        encoded = password_bytes(password, encoding)
        if public_key is not None and len(encoded) > (limit := max_password_bytes(public_key, padding)):
            return [Problem.of("password_too_long", f"at most {limit} bytes")]
    except ProblemError as exc:
        if exc.code == "bad_padding":
            raise
        return [exc.problem]
    return []


def _result(problems: list[Problem], **fields: Any) -> Inspection:
    ordered = tuple(sorted(problems, key=lambda p: p.severity != ERROR))
    return Inspection(ok=not any(p.severity == ERROR for p in ordered), problems=ordered, **fields)


def _describe(
    opened: Opened,
    problems: list[Problem],
    visible_key_bags: int,
    *,
    upn: str | None,
    purpose: str | None,
    now: datetime,
    kdf: dict[str, Any] | None,
    mac: dict[str, Any] | None,
) -> Inspection:
    keys, certificates = opened.keys, opened.certificates
    if not certificates:
        problems.append(Problem.of("no_certificate"))
    if not keys:
        problems.append(Problem.of("no_private_key"))
    elif len(keys) > 1 or visible_key_bags > 1:
        problems.append(Problem.of("multiple_keys"))

    leaf: x509.Certificate | None = None
    leaf_spki: bytes | None = None
    key_public = keys[0].public_key() if keys else None
    if key_public is not None:
        wanted = spki(key_public)
        leaf = next((c for c in certificates if _cert_spki(c) == wanted), None)
        if leaf is None and certificates:
            problems.append(Problem.of("key_certificate_mismatch"))
        elif leaf is not None:
            leaf_spki = wanted
    # The leaf's public key when it is the private key's (the same key, already loaded).
    leaf_public = key_public if leaf_spki else None
    if leaf is None and certificates:
        leaf = next((c for c in certificates if not _is_ca(_extensions(c))), certificates[0])
    if leaf is None:
        return _result(problems, kdf=kdf, mac=mac, key=_key_info(key_public))
    if leaf_spki is None:
        leaf_spki = _cert_spki(leaf)

    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if now > not_after:
        problems.append(Problem.of("expired", f"expired {iso_utc(not_after)}"))
    elif now < not_before:
        problems.append(Problem.of("not_yet_valid", f"valid from {iso_utc(not_before)}"))
    elif not_after - now < timedelta(days=limits.expires_soon_days()):
        problems.append(Problem.of("expires_soon", f"expires {iso_utc(not_after)}"))

    extensions = _extensions(leaf)
    emails, upns = _addresses(leaf, extensions)
    ekus = _ekus(extensions)
    if _is_ca(extensions):
        problems.append(Problem.of("ca_certificate"))
    if upn and upn.casefold() not in {a.casefold() for a in (*emails, *upns)}:
        problems.append(Problem.of("upn_mismatch"))
    if (
        purpose in SMIME_PURPOSES
        and ekus is not None
        and not {"emailProtection", "anyExtendedKeyUsage"} & set(ekus)
    ):
        problems.append(Problem.of("missing_email_protection_eku"))
    if purpose in SMIME_PURPOSES and (missing := _missing_key_usage(leaf, leaf_public, extensions, purpose)):
        problems.append(Problem.of("key_usage_mismatch", f"needs {missing}"))
    der = opened.der_of(leaf)

    return _result(
        problems,
        thumbprint=hashlib.sha1(der).hexdigest(),
        subject=leaf.subject.rfc4514_string(_NAMES),
        issuer=_issuer_name(leaf, der),
        serial=format(leaf.serial_number, "x"),
        not_before=not_before,
        not_after=not_after,
        emails=emails,
        upns=upns,
        ekus=tuple(ekus or ()),
        key=_key_info(key_public, leaf),
        key_fingerprint=hashlib.sha256(leaf_spki).hexdigest() if leaf_spki else None,
        chain_length=len(certificates),
        kdf=kdf,
        mac=mac,
        certificate=leaf,
    )


def _cert_spki(certificate: x509.Certificate) -> bytes | None:
    try:
        return spki(certificate.public_key())
    except PARSE_ERRORS:
        return None


# Issuer DER -> its RFC 4514 string: an import's certificates come from a few CAs, and formatting
# a name costs more than the rest of reading the certificate's fields.
_ISSUER_NAMES: dict[bytes, str] = {}
_ISSUER_NAMES_KEPT = 256


def _issuer_name(certificate: x509.Certificate, der: bytes) -> str:
    issuer = certificate_issuer(der)
    name = _ISSUER_NAMES.get(issuer) if issuer else None
    if name is None:
        name = certificate.issuer.rfc4514_string(_NAMES)
        if issuer:
            if len(_ISSUER_NAMES) >= _ISSUER_NAMES_KEPT:
                _ISSUER_NAMES.clear()
            _ISSUER_NAMES[issuer] = name
    return name


_Extensions = dict[type[x509.ExtensionType], x509.ExtensionType] | None


def _extensions(certificate: x509.Certificate) -> _Extensions:
    """The certificate's extensions by type, read once; None when they cannot be read
    (malformed, or one extension given twice, which RFC 5280 forbids)."""
    try:
        return {type(extension.value): extension.value for extension in certificate.extensions}
    except (x509.DuplicateExtension, *PARSE_ERRORS):
        return None


def _extension[E: x509.ExtensionType](extensions: _Extensions, kind: type[E]) -> E | None:
    found = extensions.get(kind) if extensions else None
    return found if isinstance(found, kind) else None


def _is_ca(extensions: _Extensions) -> bool:
    constraints = _extension(extensions, x509.BasicConstraints)
    return bool(constraints and constraints.ca)


def _missing_key_usage(
    certificate: x509.Certificate, public: Any, extensions: _Extensions, purpose: str
) -> str:
    """The key usage an S/MIME purpose needs and the certificate's key usage extension lacks ("" if fine).

    RFC 8550: signing needs digitalSignature or nonRepudiation; encryption needs keyEncipherment
    (RSA) or keyAgreement (EC). A certificate without the extension allows every usage.
    """
    if extensions is None:
        return "a readable key usage extension"
    usage = _extension(extensions, x509.KeyUsage)
    if usage is None:
        return ""
    if purpose == "smimeSigning":
        return "" if usage.digital_signature or usage.content_commitment else "digitalSignature"
    if public is None:
        try:
            public = certificate.public_key()
        except PARSE_ERRORS:
            return "a readable public key"
    if isinstance(public, ec.EllipticCurvePublicKey):
        return "" if usage.key_agreement else "keyAgreement"
    if isinstance(public, rsa.RSAPublicKey):
        return "" if usage.key_encipherment else "keyEncipherment"
    return "a key type that can encrypt"


def _addresses(
    certificate: x509.Certificate, extensions: _Extensions
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    emails: list[str] = []
    upns: list[str] = []
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS):
        if isinstance(attribute.value, str):
            emails.append(attribute.value)
    san = _extension(extensions, x509.SubjectAlternativeName)
    for name in san or ():
        if isinstance(name, x509.RFC822Name):
            emails.append(name.value)
        elif (
            isinstance(name, x509.OtherName)
            and name.type_id.dotted_string == UPN_OID
            and (value := utf8_string(name.value)) is not None
        ):
            upns.append(value)
    return tuple(dict.fromkeys(emails)), tuple(dict.fromkeys(upns))


def _ekus(extensions: _Extensions) -> list[str] | None:
    """EKU names (dotted OIDs when unnamed); None when the certificate has no EKU extension."""
    if extensions is None:
        return []
    usages = _extension(extensions, x509.ExtendedKeyUsage)
    if usages is None:
        return None
    return [_EKU_NAMES.get(oid.dotted_string, oid.dotted_string) for oid in usages]


def _key_info(public: Any, certificate: x509.Certificate | None = None) -> dict[str, Any] | None:
    """The key's type and size: of the private key's public key, else of the certificate's."""
    if public is None:
        if certificate is None:
            return None
        try:
            public = certificate.public_key()
        except PARSE_ERRORS:
            return None
    if isinstance(public, rsa.RSAPublicKey):
        return {"type": "rsa", "bits": public.key_size}
    if isinstance(public, ec.EllipticCurvePublicKey):
        return {"type": "ec", "curve": public.curve.name}
    if isinstance(public, dsa.DSAPublicKey):
        return {"type": "dsa", "bits": public.key_size}
    if isinstance(public, ed25519.Ed25519PublicKey):
        return {"type": "ed25519"}
    if isinstance(public, ed448.Ed448PublicKey):
        return {"type": "ed448"}
    return {"type": "other"}

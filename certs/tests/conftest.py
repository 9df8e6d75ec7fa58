"""Fixtures that make PFX files with real producers: cryptography, the openssl CLI and keytool."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import core
from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.test import Client

from portal.models import User

PASSWORD = "Correct-Horse-7"
UPN = "alice@contoso.example"
UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
NOW = datetime.now(UTC)


@dataclass(frozen=True)
class Pair:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


_KEYS: dict[str, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey] = {}


def key_for(kind: str) -> Any:
    """Keys are slow to make, so each test session makes each kind once (plus spares)."""
    if kind not in _KEYS:
        if kind.startswith("ec"):
            _KEYS[kind] = ec.generate_private_key(ec.SECP256R1())
        else:
            bits = 4096 if kind.startswith("rsa4096") else 2048
            _KEYS[kind] = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return _KEYS[kind]


def make_pair(
    kind: str = "rsa",
    *,
    email: str | None = UPN,
    upn: str | None = UPN,
    ekus: list[x509.ObjectIdentifier] | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    cn: str = "Alice Example",
) -> Pair:
    key = key_for(kind)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Contoso Test CA")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - timedelta(days=1))
        .not_valid_after(not_after or NOW + timedelta(days=365))
    )
    names: list[x509.GeneralName] = []
    if email:
        names.append(x509.RFC822Name(email))
    if upn:
        names.append(x509.OtherName(UPN_OID, core.UTF8String(upn).dump()))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ekus is None:
        ekus = [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH]
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    signer = key_for("ca")
    return Pair(key, builder.sign(signer, hashes.SHA256()))


def ca_certificate() -> x509.Certificate:
    key = key_for("ca")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Contoso Test CA")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=10))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def with_cryptography(
    pair: Pair | None,
    password: str = PASSWORD,
    *,
    legacy: bool = False,
    rounds: int = 2048,
    cert: x509.Certificate | None = None,
    cas: list[x509.Certificate] | None = None,
) -> bytes:
    builder = serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(rounds)
    if legacy:
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(
            hashes.SHA1()
        )
    else:
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
    return pkcs12.serialize_key_and_certificates(
        b"alice",
        pair.key if pair else None,
        cert or (pair.cert if pair else None),
        cas,
        builder.build(password.encode()),
    )


def with_openssl(
    tmp: Path, pair: Pair, password: str = PASSWORD, *options: str, nokey: bool = False
) -> bytes:
    key, cert, out = tmp / "key.pem", tmp / "cert.pem", tmp / "out.p12"
    key.write_bytes(pair.key_pem())
    cert.write_bytes(pair.cert_pem())
    command = ["openssl", "pkcs12", "-export", "-in", str(cert), "-out", str(out), "-passout", "stdin"]
    command += ["-nokeys"] if nokey else ["-inkey", str(key)]
    subprocess.run([*command, *options], input=password.encode() + b"\n", check=True, capture_output=True)
    return out.read_bytes()


def with_keytool(tmp: Path, source: bytes, password: str = PASSWORD) -> bytes:
    src, dest = tmp / "src.p12", tmp / "java.p12"
    src.write_bytes(source)
    subprocess.run(
        [
            "keytool", "-importkeystore", "-noprompt",
            "-srckeystore", str(src), "-srcstoretype", "PKCS12", "-srcstorepass", password,
            "-destkeystore", str(dest), "-deststoretype", "PKCS12", "-deststorepass", password,
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return dest.read_bytes()


def unprotected_pfx(
    keys: list[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey], certs: list[x509.Certificate]
) -> bytes:
    """A PFX with plain key bags and no MAC, built directly in ASN.1 (any key/cert mix)."""
    bags = []
    for key in keys:
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        bags.append({"bag_id": "key_bag", "bag_value": asn1_pkcs12.PrivateKeyInfo.load(der)})
    for cert in certs:
        bags.append(
            {
                "bag_id": "cert_bag",
                "bag_value": {
                    "cert_id": "x509",
                    "cert_value": asn1_pkcs12.ParsableOctetString(
                        cert.public_bytes(serialization.Encoding.DER)
                    ),
                },
            }
        )
    safe = asn1_pkcs12.SafeContents(bags).dump()
    auth = asn1_pkcs12.AuthenticatedSafe([{"content_type": "data", "content": safe}]).dump()
    pfx: bytes = asn1_pkcs12.Pfx(
        {"version": "v3", "auth_safe": {"content_type": "data", "content": auth}}
    ).dump()
    return pfx


def with_iterations(data: bytes, iterations: int) -> bytes:
    """The same file claiming another MAC and bag iteration count (its MAC no longer verifies)."""
    pfx = asn1_pkcs12.Pfx.load(data)
    auth = asn1_pkcs12.AuthenticatedSafe.load(pfx["auth_safe"]["content"].native)
    for info in auth:
        if info["content_type"].native == "encrypted_data":
            algorithm = info["content"]["encrypted_content_info"]["content_encryption_algorithm"]
            algorithm["parameters"]["key_derivation_func"]["parameters"]["iteration_count"] = iterations
    mac = pfx["mac_data"]
    mac["iterations"] = iterations
    return bytes(
        asn1_pkcs12.Pfx(
            {
                "version": "v3",
                "auth_safe": {"content_type": "data", "content": auth.dump(force=True)},
                "mac_data": mac,
            }
        ).dump(force=True)
    )


def to_ber(data: bytes) -> bytes:
    """Re-encode the outer layers with indefinite lengths and a chunked OCTET STRING.

    The MAC covers the octets inside, so it still verifies: a real, valid non-DER file.
    """
    pfx = asn1_pkcs12.Pfx.load(data)
    auth = pfx["auth_safe"]["content"].native
    chunks = b"".join(core.OctetString(auth[i : i + 1000]).dump() for i in range(0, len(auth), 1000))
    octets = b"\x24\x80" + chunks + b"\x00\x00"
    content_info = b"\x30\x80" + core.ObjectIdentifier("1.2.840.113549.1.7.1").dump() + b"\xa0\x80" + octets
    content_info += b"\x00\x00\x00\x00"
    mac: bytes = pfx["mac_data"].dump()
    return bytes(b"\x30\x80" + core.Integer(3).dump() + content_info + mac + b"\x00\x00")


@pytest.fixture(scope="session")
def pair() -> Pair:
    return make_pair()


@pytest.fixture(scope="session")
def good_pfx(pair: Pair) -> bytes:
    return with_cryptography(pair)


@pytest.fixture
def openssl_pfx(tmp_path: Path) -> Callable[..., bytes]:
    def make(*options: str, pair: Pair | None = None, password: str = PASSWORD, nokey: bool = False) -> bytes:
        return with_openssl(tmp_path, pair or make_pair(), password, *options, nokey=nokey)

    return make


@pytest.fixture
def keytool_pfx(tmp_path: Path) -> Callable[..., bytes]:
    if not shutil.which("keytool"):
        pytest.skip("keytool is not installed")

    def make(source: bytes, password: str = PASSWORD) -> bytes:
        return with_keytool(tmp_path, source, password)

    return make


def flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, str | None]]:
    """Files from every producer here, each with the password to try on it."""
    tmp = tmp_path_factory.mktemp("corpus")
    pair = make_pair()
    files: dict[str, tuple[bytes, str | None]] = {
        "cryptography aes": (with_cryptography(pair), PASSWORD),
        "cryptography 3des": (with_cryptography(pair, legacy=True), PASSWORD),
        "cryptography ec": (with_cryptography(make_pair("ec")), PASSWORD),
        "cryptography rsa4096": (with_cryptography(make_pair("rsa4096")), PASSWORD),
        "cryptography chain": (with_cryptography(pair, cas=[ca_certificate()]), PASSWORD),
        "cryptography no key": (with_cryptography(None, cert=pair.cert), PASSWORD),
        "openssl default": (with_openssl(tmp, pair), PASSWORD),
        "openssl legacy": (with_openssl(tmp, pair, PASSWORD, "-legacy"), PASSWORD),
        "openssl aes128": (with_openssl(tmp, pair, PASSWORD, "-keypbe", "AES-128-CBC", "-certpbe", "AES-128-CBC"), PASSWORD),
        "openssl nomac": (with_openssl(tmp, pair, PASSWORD, "-nomac"), PASSWORD),
        "openssl sha512 mac": (with_openssl(tmp, pair, PASSWORD, "-macalg", "sha512"), PASSWORD),
        "openssl empty password": (with_openssl(tmp, pair, ""), ""),
        "openssl unencrypted": (with_openssl(tmp, pair, PASSWORD, "-keypbe", "NONE", "-certpbe", "NONE"), PASSWORD),
        "openssl non-ascii password": (with_openssl(tmp, pair, "pässwörd"), "pässwörd"),
        "wrong password": (with_cryptography(pair), "not the password"),
        "legacy wrong password": (with_openssl(tmp, pair, PASSWORD, "-legacy"), "nope"),
        "expired": (with_cryptography(make_pair(not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=2))), PASSWORD),
        "not yet valid": (with_cryptography(make_pair(not_before=NOW + timedelta(days=2))), PASSWORD),
        "multiple keys": (unprotected_pfx([pair.key, key_for("ec")], [pair.cert]), None),
        "mismatch": (unprotected_pfx([key_for("ec")], [pair.cert]), None),
        "ber": (to_ber(with_openssl(tmp, pair)), PASSWORD),
        "truncated": (with_cryptography(pair)[:1200], PASSWORD),
        "corrupt key": (flip(with_cryptography(pair), len(with_cryptography(pair)) - 200), PASSWORD),
    }  # fmt: skip
    if shutil.which("keytool"):
        files["keytool"] = (with_keytool(tmp, files["openssl default"][0]), PASSWORD)
    return files


@pytest.fixture
def admin_client(intune_admin: User) -> Client:
    """A test client signed in as an Intune administrator."""
    client = Client()
    client.force_login(intune_admin)
    return client


@pytest.fixture
def helpdesk_client(helpdesk: User) -> Client:
    """A test client signed in as a help desk operator (reads, changes nothing)."""
    client = Client()
    client.force_login(helpdesk)
    return client

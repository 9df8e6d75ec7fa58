from __future__ import annotations

import time
from datetime import timedelta

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs.pfx import ProblemError, inspect_pfx, load_public_key
from certs.tests.conftest import (
    NOW,
    PASSWORD,
    UPN,
    ca_certificate,
    flip,
    key_for,
    make_pair,
    to_ber,
    unprotected_pfx,
    with_cryptography,
    with_iterations,
)


def codes(result):
    return [p.code for p in result.problems]


def test_it_describes_a_good_openssl_file(openssl_pfx, pair):
    result = inspect_pfx(openssl_pfx(pair=pair), PASSWORD, upn=UPN, purpose="smimeEncryption")
    assert result.ok, result.problems
    assert result.problems == ()
    data = result.to_json()
    assert len(data["thumbprint"]) == 40 and data["thumbprint"] == data["thumbprint"].lower()
    assert data["subject"] == "CN=Alice Example"
    assert data["emails"] == [UPN] and data["upns"] == [UPN]
    assert data["ekus"] == ["emailProtection", "clientAuth"]
    assert data["key"] == {"type": "rsa", "bits": 2048}
    assert data["chain_length"] == 1
    assert data["kdf"] == {"algorithm": "pbkdf2-sha256", "cipher": "aes-256-cbc", "iterations": 2048}
    assert data["mac"] == {"algorithm": "hmac-sha256", "iterations": 2048}
    assert data["not_after"].endswith("Z") and data["serial"] == format(pair.cert.serial_number, "x")


def test_it_picks_the_certificate_that_matches_the_key_as_leaf(pair):
    result = inspect_pfx(with_cryptography(pair, cas=[ca_certificate()]), PASSWORD)
    assert result.ok and result.chain_length == 2 and result.subject == "CN=Alice Example"


def test_it_reports_ec_keys_by_curve():
    result = inspect_pfx(with_cryptography(make_pair("ec")), PASSWORD)
    assert result.ok and result.key == {"type": "ec", "curve": "secp256r1"}


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"hello, I am a text file", "not_pkcs12"),
        (b"\x30\x82\x01\x00\x30\x82", "not_pkcs12"),
    ],
)
def test_it_rejects_files_that_are_not_pfx(data, code):
    result = inspect_pfx(data, PASSWORD)
    assert not result.ok and codes(result) == [code]


def test_it_rejects_a_certificate_file_as_not_pkcs12(pair):
    assert codes(
        inspect_pfx(
            pair.cert.public_bytes(__import__("cryptography").hazmat.primitives.serialization.Encoding.DER),
            "x",
        )
    ) == ["not_pkcs12"]


def test_it_rejects_files_over_the_size_cap(settings, good_pfx):
    settings.PFX_MAX_FILE_BYTES = 1000
    assert codes(inspect_pfx(good_pfx, PASSWORD)) == ["file_too_large"]


def test_it_rejects_a_wrong_password(good_pfx):
    assert codes(inspect_pfx(good_pfx, "wrong")) == ["wrong_password"]


def test_it_rejects_a_wrong_password_on_a_file_without_mac(openssl_pfx):
    assert codes(inspect_pfx(openssl_pfx("-nomac"), "wrong")) == ["wrong_password"]


def test_it_calls_a_truncated_file_corrupt(good_pfx):
    for size in (1, 10, 100, len(good_pfx) // 2, len(good_pfx) - 1):
        assert codes(inspect_pfx(good_pfx[:size], PASSWORD)) == ["corrupt"], size


def test_it_calls_an_altered_file_corrupt_not_a_wrong_password(good_pfx):
    # Damage the last encrypted bag (the key) deep inside: the MAC fails, yet the password is right.
    for position in (len(good_pfx) - 200, len(good_pfx) // 2, 300):
        assert codes(inspect_pfx(flip(good_pfx, position), PASSWORD)) == ["corrupt"], position


def test_it_still_calls_an_altered_file_a_wrong_password_with_the_wrong_password(good_pfx):
    assert codes(inspect_pfx(flip(good_pfx, len(good_pfx) - 200), "wrong")) == ["wrong_password"]


def test_it_rejects_a_file_without_a_private_key(openssl_pfx):
    assert codes(inspect_pfx(openssl_pfx(nokey=True), PASSWORD)) == ["no_private_key"]


def test_it_rejects_a_file_without_a_certificate():
    assert codes(inspect_pfx(unprotected_pfx([key_for("rsa")], []), None)) == [
        "no_certificate",
        "weak_encryption",
    ]


def test_it_rejects_a_file_with_several_keys(pair):
    result = inspect_pfx(unprotected_pfx([pair.key, key_for("ec")], [pair.cert]), None)
    assert codes(result) == ["multiple_keys", "weak_encryption"]


def test_it_rejects_a_key_that_matches_no_certificate(pair):
    result = inspect_pfx(unprotected_pfx([key_for("ec")], [pair.cert]), None)
    assert codes(result) == ["key_certificate_mismatch", "weak_encryption"]
    assert result.subject == "CN=Alice Example"


def test_it_rejects_an_expired_certificate():
    pair = make_pair(not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1))
    assert codes(inspect_pfx(with_cryptography(pair), PASSWORD)) == ["expired"]


def test_it_rejects_a_certificate_not_valid_yet():
    pair = make_pair(not_before=NOW + timedelta(days=1))
    assert codes(inspect_pfx(with_cryptography(pair), PASSWORD)) == ["not_yet_valid"]


def test_it_warns_when_the_certificate_expires_soon(settings, good_pfx):
    settings.PFX_EXPIRES_SOON_DAYS = 400
    result = inspect_pfx(good_pfx, PASSWORD)
    assert result.ok and codes(result) == ["expires_soon"]


def test_it_uses_the_given_time(good_pfx):
    assert codes(inspect_pfx(good_pfx, PASSWORD, now=NOW + timedelta(days=400))) == ["expired"]


def test_it_refuses_huge_iteration_counts_in_milliseconds(good_pfx):
    hostile = with_iterations(good_pfx, 2**31 - 1)
    start = time.perf_counter()
    result = inspect_pfx(hostile, PASSWORD)
    assert time.perf_counter() - start < 0.05
    assert codes(result) == ["kdf_iterations_too_high"]


def test_it_accepts_iteration_counts_real_producers_use(pair):
    assert inspect_pfx(with_cryptography(pair, rounds=100_000), PASSWORD).ok


def test_it_rejects_a_non_ascii_password_in_strict_mode(openssl_pfx):
    data = openssl_pfx(password="pässwörd")
    result = inspect_pfx(data, "pässwörd")
    assert codes(result) == ["password_not_ascii"]
    assert result.thumbprint  # the file itself opened


def test_it_accepts_a_latin1_password_in_reference_mode(openssl_pfx):
    assert inspect_pfx(openssl_pfx(password="pässwörd"), "pässwörd", password_encoding="reference").ok


def test_it_rejects_a_password_too_long_for_the_connector_key(openssl_pfx, pair):
    public = load_public_key(
        pair.key.public_key().public_bytes(
            __import__("cryptography").hazmat.primitives.serialization.Encoding.PEM,
            __import__("cryptography").hazmat.primitives.serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )
    long_password = "x" * 127
    result = inspect_pfx(openssl_pfx(password=long_password), long_password, public_key=public)
    assert codes(result) == ["password_too_long"]
    assert inspect_pfx(
        openssl_pfx(password=long_password), long_password, public_key=public, padding="oaepSha256"
    ).ok


def test_it_warns_when_the_upn_is_not_in_the_certificate(good_pfx):
    result = inspect_pfx(good_pfx, PASSWORD, upn="bob@contoso.example")
    assert result.ok and codes(result) == ["upn_mismatch"]
    assert not inspect_pfx(good_pfx, PASSWORD, upn=UPN.upper()).problems


def test_it_warns_about_a_missing_email_protection_eku_for_smime():
    data = with_cryptography(make_pair(ekus=[ExtendedKeyUsageOID.CLIENT_AUTH]))
    assert codes(inspect_pfx(data, PASSWORD, purpose="smimeSigning")) == ["missing_email_protection_eku"]
    assert codes(inspect_pfx(data, PASSWORD, purpose="wifi")) == []


def test_it_warns_about_legacy_rc2_encryption(openssl_pfx):
    result = inspect_pfx(openssl_pfx("-legacy"), PASSWORD)
    assert result.ok and codes(result) == ["weak_encryption"]
    assert result.kdf == {"algorithm": "pkcs12-sha1", "cipher": "3des-cbc", "iterations": 2048}
    assert result.mac == {"algorithm": "hmac-sha1", "iterations": 2048}


def test_it_tolerates_ber_encoding_with_a_warning(openssl_pfx, pair):
    result = inspect_pfx(to_ber(openssl_pfx(pair=pair)), PASSWORD)
    assert result.ok and codes(result) == ["not_der"]


def test_it_opens_files_with_an_empty_password(openssl_pfx):
    data = openssl_pfx(password="")
    assert inspect_pfx(data, "").ok
    assert inspect_pfx(data, None).ok


def test_it_opens_java_keytool_files(keytool_pfx, openssl_pfx):
    result = inspect_pfx(keytool_pfx(openssl_pfx()), PASSWORD)
    assert result.ok, result.problems


def test_it_refuses_an_unknown_purpose(good_pfx):
    with pytest.raises(ProblemError) as caught:
        inspect_pfx(good_pfx, PASSWORD, purpose="email")
    assert caught.value.code == "bad_purpose"


def test_it_never_puts_the_password_in_the_result(good_pfx):
    for password in (PASSWORD, "wrong-secret-123"):
        assert password not in repr(inspect_pfx(good_pfx, password))
        assert password not in str(inspect_pfx(good_pfx, password).to_json())


def test_every_problem_code_is_documented():
    from pathlib import Path

    from certs.pfx import CATALOGUE

    doc = (Path(__file__).resolve().parents[2] / "docs" / "pfx-problem-codes.md").read_text()
    for code, (severity, message) in CATALOGUE.items():
        assert f"| `{code}` | {severity} |" in doc and message in doc, code


def _with_key_usage(kind: str, **usage: bool) -> bytes:
    """A PFX for UPN whose certificate has a key usage extension with only ``usage`` set."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    from certs.tests.conftest import Pair

    flags = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    key = key_for(kind)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Alice Example")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Contoso Test CA")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(UPN)]), critical=False)
        .add_extension(x509.KeyUsage(**(flags | usage)), critical=True)
        .sign(key_for("ca"), hashes.SHA256())
    )
    return with_cryptography(Pair(key, cert))


def test_a_ca_certificate_with_its_private_key_is_refused_with_its_own_code():
    from certs.tests.conftest import Pair

    result = inspect_pfx(with_cryptography(Pair(key_for("ca"), ca_certificate())), PASSWORD)
    assert not result.ok and "ca_certificate" in codes(result)
    # A CA certificate beside the user's own (the chain) is no problem.
    assert inspect_pfx(with_cryptography(make_pair(), cas=[ca_certificate()]), PASSWORD).ok


@pytest.mark.parametrize(
    ("kind", "usage", "purpose", "refused"),
    [
        ("rsa", {"key_encipherment": True}, "smimeSigning", True),
        ("rsa", {"key_encipherment": True}, "smimeEncryption", False),
        ("rsa", {"digital_signature": True}, "smimeEncryption", True),
        ("rsa", {"digital_signature": True}, "smimeSigning", False),
        ("rsa", {"content_commitment": True}, "smimeSigning", False),
        ("rsa", {"digital_signature": True}, "unassigned", False),
        ("ec", {"key_agreement": True}, "smimeEncryption", False),
        ("ec", {"key_encipherment": True}, "smimeEncryption", True),
    ],
)
def test_a_key_usage_that_does_not_allow_the_purpose_is_refused_with_its_own_code(
    kind, usage, purpose, refused
):
    result = inspect_pfx(_with_key_usage(kind, **usage), PASSWORD, purpose=purpose)
    assert ("key_usage_mismatch" in codes(result)) is refused
    assert result.ok is not refused


def test_the_key_fingerprint_is_the_sha256_of_the_certificates_public_key(pair):
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    result = inspect_pfx(with_cryptography(pair), PASSWORD)
    spki = pair.cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert result.key_fingerprint == hashlib.sha256(spki).hexdigest()
    assert result.to_json()["key_fingerprint"] == result.key_fingerprint
    # Another certificate of the same key pair has the same fingerprint.
    renewed = inspect_pfx(with_cryptography(make_pair(not_after=NOW + timedelta(days=700))), PASSWORD)
    assert renewed.key_fingerprint == result.key_fingerprint and renewed.thumbprint != result.thumbprint


def _certificate_with(pair, change) -> bytes:
    """The pair's certificate with its DER changed by ``change`` (the signature no longer matters)."""
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from certs.tests.conftest import Pair

    certificate = asn1_x509.Certificate.load(pair.cert.public_bytes(Encoding.DER))
    change(certificate["tbs_certificate"])
    changed = x509.load_der_x509_certificate(certificate.dump(force=True))
    return with_cryptography(Pair(pair.key, changed))


def test_a_certificate_with_a_duplicated_extension_is_reported_not_raised(pair):
    def duplicate(tbs):
        tbs["extensions"].append(tbs["extensions"][0].copy())

    data = _certificate_with(pair, duplicate)
    for engine in ("fast", "library"):
        assert inspect_pfx(data, PASSWORD, engine=engine).ok
        result = inspect_pfx(data, PASSWORD, purpose="smimeEncryption", engine=engine)
        assert not result.ok and "key_usage_mismatch" in codes(result)


def test_each_certificate_reports_its_own_issuer():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    from certs.tests.conftest import Pair

    def issued_by(name: str) -> bytes:
        key = key_for("rsa")
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Alice")]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=365))
            .sign(key_for("ca"), hashes.SHA256())
        )
        return with_cryptography(Pair(key, cert))

    first, second = issued_by("Fabrikam CA 1"), issued_by("Fabrikam CA 2")
    for _ in range(2):
        assert inspect_pfx(first, PASSWORD).issuer == "CN=Fabrikam CA 1"
        assert inspect_pfx(second, PASSWORD).issuer == "CN=Fabrikam CA 2"

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from certs.pfx import (
    PADDINGS,
    ProblemError,
    build_graph_body,
    encrypt_password,
    inspect_pfx,
    load_public_key,
    max_password_bytes,
    parse_rsa_public_blob,
    password_bytes,
    public_key_fingerprint,
    rsa_public_blob,
)
from certs.pfx.kdf import HASHES, bmp_password, pkcs12_kdf, pkcs12_kdf_python
from certs.tests.conftest import PASSWORD, UPN, key_for

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "graph-userpfx-schema.json"
HASH: dict[str, Any] = {"oaepSha256": hashes.SHA256, "oaepSha384": hashes.SHA384, "oaepSha512": hashes.SHA512}


@pytest.fixture(scope="module")
def connector_key():
    return key_for("connector")


def pem(key, newline=b"\n"):
    data = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data.replace(b"\n", newline)


def decrypt(key, ciphertext, scheme, mgf=None):
    algorithm = HASH[scheme]()
    mgf_algorithm = (mgf or HASH[scheme])()
    return key.decrypt(
        ciphertext, padding.OAEP(mgf=padding.MGF1(mgf_algorithm), algorithm=algorithm, label=None)
    )


@pytest.mark.parametrize("scheme", list(PADDINGS))
def test_the_connector_can_decrypt_the_password_for_each_padding(connector_key, scheme):
    public = load_public_key(pem(connector_key))
    ciphertext = encrypt_password("1234", public, scheme)
    assert len(base64.b64encode(ciphertext)) == 344
    assert decrypt(connector_key, ciphertext, scheme) == b"1234"


def test_decrypting_with_a_different_mgf1_hash_fails(connector_key):
    ciphertext = encrypt_password("1234", load_public_key(pem(connector_key)), "oaepSha512")
    with pytest.raises(ValueError):
        decrypt(connector_key, ciphertext, "oaepSha512", mgf=hashes.SHA1)


@pytest.mark.parametrize(("scheme", "limit"), [("oaepSha512", 126), ("oaepSha384", 158), ("oaepSha256", 190)])
def test_it_enforces_the_oaep_length_limit(connector_key, scheme, limit):
    public = load_public_key(pem(connector_key))
    assert max_password_bytes(public, scheme) == limit
    assert decrypt(connector_key, encrypt_password("a" * limit, public, scheme), scheme) == b"a" * limit
    with pytest.raises(ProblemError) as caught:
        encrypt_password("a" * (limit + 1), public, scheme)
    assert caught.value.code == "password_too_long"
    assert "a" * 10 not in str(caught.value)


@pytest.mark.parametrize("scheme", ["pkcs1", "oaepSha1", "Pkcs1", "none", "rsa"])
def test_it_refuses_pkcs1_and_sha1_padding(connector_key, scheme):
    with pytest.raises(ProblemError) as caught:
        encrypt_password("1234", load_public_key(pem(connector_key)), scheme)
    assert caught.value.code == "bad_padding"


@pytest.mark.parametrize(
    ("password", "reference", "strict"),
    [
        ("1234", "31323334", "31323334"),
        ("TestCert", "5465737443657274", "5465737443657274"),
        ("pässwörd", "70e4737377f67264", None),
        ("€uro", None, None),
        ("😀", None, None),
    ],
)
def test_it_encodes_passwords_like_the_reference_tool_or_refuses(password, reference, strict):
    modes: list[tuple[Any, str | None]] = [("reference", reference), ("strict", strict)]
    for mode, expected in modes:
        if expected is None:
            with pytest.raises(ProblemError) as caught:
                password_bytes(password, mode)
            assert caught.value.code == "password_not_ascii"
        else:
            assert password_bytes(password, mode).hex() == expected


def test_a_cng_blob_and_pem_give_the_same_key(connector_key):
    numbers = connector_key.public_key().public_numbers()
    # Built by hand from the BCRYPT_RSAKEY_BLOB layout, independently of rsa_public_blob.
    blob = (
        struct.pack("<6I", 0x31415352, 2048, 3, 256, 0, 0) + b"\x01\x00\x01" + numbers.n.to_bytes(256, "big")
    )
    from_blob, from_pem = load_public_key(blob), load_public_key(pem(connector_key))
    assert from_blob.public_numbers() == from_pem.public_numbers()
    assert public_key_fingerprint(from_blob) == public_key_fingerprint(from_pem)
    assert load_public_key(pem(connector_key, b"\r\n")).public_numbers() == numbers


def test_it_writes_the_cng_blob_export_intune_public_key_writes(connector_key):
    blob = rsa_public_blob(connector_key.public_key())
    assert len(blob) == 283
    assert blob[:24].hex() == "525341310008000003000000000100000000000000000000"
    assert parse_rsa_public_blob(blob).public_numbers() == connector_key.public_key().public_numbers()
    ciphertext = encrypt_password("1234", parse_rsa_public_blob(blob))
    assert decrypt(connector_key, ciphertext, "oaepSha512") == b"1234"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "bad_public_key"),
        (b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n", "bad_public_key"),
        (struct.pack("<6I", 0x31415352, 2048, 3, 256, 0, 0) + b"\x01\x00\x01", "bad_public_key"),
        (struct.pack("<6I", 0x33415352, 2048, 3, 256, 128, 128), "private_key_given"),
    ],
)
def test_it_rejects_bad_key_files(data, code):
    with pytest.raises(ProblemError) as caught:
        load_public_key(data)
    assert caught.value.code == code


def test_it_refuses_a_pem_private_key(connector_key):
    data = connector_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ProblemError) as caught:
        load_public_key(data)
    assert caught.value.code == "private_key_given"


def test_the_graph_body_has_the_documented_shape(connector_key, good_pfx, pair):
    schema = json.loads(SCHEMA.read_text())
    properties = schema["components"]["schemas"]["microsoft.graph.userPFXCertificate"]["allOf"][1][
        "properties"
    ]
    public = load_public_key(rsa_public_blob(connector_key.public_key()))
    inspection = inspect_pfx(good_pfx, PASSWORD, upn=UPN)
    body = build_graph_body(
        inspection,
        good_pfx,
        encrypted_password=encrypt_password(PASSWORD, public, "oaepSha384"),
        upn=UPN,
        provider_name="Microsoft Software Key Storage Provider",
        key_name="PFXEncryptionKey",
        purpose="SmimeEncryption",
        padding="OaepSha384",
    )
    assert "id" not in body
    assert set(body) <= set(properties)
    assert (
        body["intendedPurpose"]
        in schema["components"]["schemas"]["microsoft.graph.userPfxIntendedPurpose"]["enum"]
    )
    assert body["intendedPurpose"] == "smimeEncryption" and body["paddingScheme"] == "oaepSha384"
    assert base64.b64decode(body["encryptedPfxBlob"], validate=True) == good_pfx
    assert body["thumbprint"] == inspection.thumbprint and len(body["thumbprint"]) == 40
    assert body["expirationDateTime"] == pair.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    password = decrypt(connector_key, base64.b64decode(body["encryptedPfxPassword"]), "oaepSha384")
    assert password == PASSWORD.encode()


def test_the_graph_body_refuses_a_file_with_errors(good_pfx):
    with pytest.raises(ProblemError) as caught:
        build_graph_body(
            inspect_pfx(good_pfx, "wrong"),
            good_pfx,
            encrypted_password=b"x",
            upn=UPN,
            provider_name="p",
            key_name="k",
        )
    assert caught.value.code == "wrong_password"


@pytest.mark.parametrize("hash_name", HASHES)
def test_the_pkcs12_kdf_from_openssl_matches_the_specification(hash_name):
    for password in (b"", bmp_password(""), bmp_password("pässwörd" * 20)):
        for n in (5, 8, 24, 64, 100):
            assert pkcs12_kdf(hash_name, password, b"salt1234", 1, 17, n) == pkcs12_kdf_python(
                hash_name, password, b"salt1234", 1, 17, n
            )

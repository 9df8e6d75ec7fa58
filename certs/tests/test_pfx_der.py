"""The direct DER walk reads every file it accepts exactly as the asn1crypto reading does."""

from __future__ import annotations

import dataclasses

import pytest
from asn1crypto import pkcs12 as asn1_pkcs12
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs.pfx import der, limits
from certs.pfx.model import Bag, Protection, Structure
from certs.pfx.problems import ProblemError
from certs.pfx.structure import asn1_bags, read_bags, read_structure, read_with_asn1
from certs.tests.conftest import make_pair, with_cryptography, with_iterations
from certs.tests.test_pfx_engines import _apply, _mutations

# What the real producers write; the walk must read all of them itself.
PRODUCERS = (
    "cryptography aes", "cryptography 3des", "cryptography ec", "cryptography rsa4096",
    "cryptography chain", "cryptography no key", "openssl default", "openssl legacy",
    "openssl aes128", "openssl nomac", "openssl sha512 mac", "openssl empty password",
    "openssl unencrypted", "openssl non-ascii password", "multiple keys", "mismatch", "keytool",
)  # fmt: skip


def _protection(protection: Protection | None) -> tuple[object, ...] | None:
    return None if protection is None else dataclasses.astuple(protection)


def _bags(bags: list[Bag]) -> list[tuple[object, ...]]:
    return [(b.kind, _protection(b.protection), b.value(), _bags(b.children)) for b in bags]


def _summary(structure: Structure) -> tuple[object, ...]:
    return (
        structure.data,
        structure.auth_safe,
        structure.mac,
        [(_protection(c.protection), c.ciphertext, c.der, _bags(c.bags)) for c in structure.containers],
        [_protection(p) for p in structure.key_protections],
        [w.code for w in structure.warnings],
    )


def _walk(data: bytes) -> Structure | None:
    return der.read_pfx(data, limits.max_kdf_iterations())


def _payloads(data: bytes) -> list[bytes]:
    """The plain SafeContents of a file (what a decrypted container holds, too)."""
    pfx = asn1_pkcs12.Pfx.load(data)
    auth = asn1_pkcs12.AuthenticatedSafe.load(pfx["auth_safe"]["content"].native)
    return [info["content"].native for info in auth if info["content_type"].native == "data"]


def test_the_der_walk_reads_every_file_of_the_corpus_as_asn1crypto_does(corpus):
    for name, (data, _) in corpus.items():
        walked = _walk(data)
        if walked is not None:
            assert _summary(walked) == _summary(read_with_asn1(data)), name


def test_the_der_walk_recognises_the_files_real_producers_write(corpus):
    for name in PRODUCERS:
        if name in corpus:
            assert _walk(corpus[name][0]) is not None, name


def test_the_der_walk_leaves_ber_and_damaged_files_to_asn1crypto(corpus):
    assert _walk(corpus["ber"][0]) is None
    assert _walk(corpus["truncated"][0]) is None
    assert read_structure(corpus["ber"][0]).warnings[-1].code == "not_der"


def test_the_der_walk_reads_plain_safe_contents_as_asn1crypto_does(corpus):
    for name, (data, _) in corpus.items():
        if name in PRODUCERS:
            for payload in _payloads(data):
                walked = der.read_safe_contents(payload, limits.max_kdf_iterations())
                assert walked is not None, name
                assert _bags(walked) == _bags(asn1_bags(list(asn1_pkcs12.SafeContents.load(payload)))), name


def test_an_iteration_count_over_the_cap_is_refused_before_any_key_derivation():
    hostile = with_iterations(with_cryptography(make_pair()), 10_000_000)
    assert _walk(hostile) is None
    with pytest.raises(ProblemError) as raised:
        read_structure(hostile)
    assert raised.value.code == "kdf_iterations_too_high"


def test_a_key_bag_claiming_too_many_iterations_in_a_decrypted_container_is_refused(corpus):
    payload = asn1_pkcs12.SafeContents.load(_payloads(corpus["openssl default"][0])[0])
    for bag in payload:
        if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
            algorithm = bag["bag_value"]["encryption_algorithm"]
            algorithm["parameters"]["key_derivation_func"]["parameters"]["iteration_count"] = 10_000_000
    hostile = payload.dump(force=True)
    assert der.read_safe_contents(hostile, limits.max_kdf_iterations()) is None
    with pytest.raises(ProblemError) as raised:
        read_bags(hostile)
    assert raised.value.code == "kdf_iterations_too_high"


_SEED = with_cryptography(make_pair(), rounds=1)
_PAYLOAD = _payloads(_SEED)[0]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_mutations(), min_size=1, max_size=3))
def test_a_mutated_file_the_walk_accepts_reads_the_same_with_asn1crypto(mutations):
    data = _SEED
    for mutation in mutations:
        data = _apply(data, mutation) if data else data
    walked = _walk(data) if data else None
    if walked is not None:
        assert _summary(walked) == _summary(read_with_asn1(data))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_mutations(), min_size=1, max_size=3))
def test_mutated_safe_contents_the_walk_accepts_read_the_same_with_asn1crypto(mutations):
    data = _PAYLOAD
    for mutation in mutations:
        data = _apply(data, mutation) if data else data
    walked = der.read_safe_contents(data, limits.max_kdf_iterations()) if data else None
    if walked is not None:
        assert _bags(walked) == _bags(asn1_bags(list(asn1_pkcs12.SafeContents.load(data))))

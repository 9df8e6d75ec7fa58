from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs.pfx import Inspection, inspect_pfx
from certs.tests.conftest import PASSWORD, make_pair, with_cryptography, with_iterations


def test_the_fast_path_and_the_library_agree_on_every_file_of_the_corpus(corpus):
    for name, (data, password) in corpus.items():
        fast = inspect_pfx(data, password, password_encoding="reference")
        library = inspect_pfx(data, password, password_encoding="reference", engine="library")
        assert fast.to_json() == library.to_json(), name


def test_the_corpus_covers_the_file_problems(corpus):
    seen = {p.code for data, password in corpus.values() for p in inspect_pfx(data, password).problems}
    assert {
        "wrong_password", "corrupt", "no_private_key", "multiple_keys", "key_certificate_mismatch",
        "expired", "not_yet_valid", "password_not_ascii", "weak_encryption", "not_der",
    } <= seen  # fmt: skip


_SEED = with_cryptography(make_pair(), rounds=1)
_HOSTILE = with_iterations(_SEED, 10_000_000)


def _mutations():
    position = st.integers(min_value=0, max_value=len(_SEED) - 1)
    return st.one_of(
        st.tuples(st.just("flip"), position, st.integers(1, 255)),
        st.tuples(st.just("truncate"), position, st.just(0)),
        st.tuples(st.just("delete"), position, st.integers(1, 64)),
        st.tuples(st.just("insert"), position, st.integers(0, 255)),
        st.tuples(st.just("length"), position, st.sampled_from([0x00, 0x7F, 0x80, 0x81, 0x84, 0xFF])),
    )


def _apply(data: bytes, mutation) -> bytes:
    kind, at, value = mutation
    at %= len(data)
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ value]) + data[at + 1 :]
    if kind == "truncate":
        return data[:at]
    if kind == "delete":
        return data[:at] + data[at + value :]
    if kind == "insert":
        return data[:at] + bytes([value]) + data[at:]
    return data[:at] + bytes([value]) + data[at + 1 :]


@settings(max_examples=400, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_mutations(), min_size=1, max_size=4), st.sampled_from([PASSWORD, "wrong", "", None]))
def test_inspection_never_raises_on_mutated_files(mutations, password):
    data = _SEED
    for mutation in mutations:
        data = _apply(data, mutation) if data else data
    result = inspect_pfx(data, password)
    assert isinstance(result, Inspection)
    assert result.ok == (not result.errors)


@settings(max_examples=100, deadline=1000)
@given(st.lists(_mutations(), min_size=1, max_size=2))
def test_inspection_of_mutated_hostile_files_stays_fast(mutations):
    data = _HOSTILE
    for mutation in mutations:
        data = _apply(data, mutation) if data else data
    assert isinstance(inspect_pfx(data, PASSWORD), Inspection)


@given(st.binary(max_size=4096))
def test_inspection_never_raises_on_random_bytes(data):
    assert isinstance(inspect_pfx(b"\x30\x82" + data, PASSWORD), Inspection)
    assert isinstance(inspect_pfx(data, None), Inspection)


@pytest.mark.parametrize("depth", [50, 5000])
def test_deeply_nested_input_does_not_recurse_without_bound(depth):
    nested = b"\x30\x80" * depth + b"\x00\x00" * depth
    assert not inspect_pfx(b"\x30\x80\x02\x01\x03" + nested, PASSWORD).ok

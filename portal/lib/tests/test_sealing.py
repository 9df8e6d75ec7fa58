from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from portal.lib import sealing

# What the code before the shared sealer wrote, with these keys: a staged PFX password
# (AES-256-GCM, bound to "batch:7:3") and a Graph credential (a Fernet token).
STAGING_KEY = "+v6/+v6/+v6/+v6/+v6/+v6/+v6/+v6/+v6/+v6/AgM="
STAGED = bytes.fromhex(
    "01f7acf02f6e724c6d220032bea0f7efb1bd8a591d1a02fd32cd486463048d7503a7361f0675594167d1d6f508c04b26d7"
)
SECRETS_KEY = "-_---_---_---_---_---_---_---_---_---_--AAE="
CREDENTIAL = (
    b"gAAAAABrDYsd-G_SuW12du7pv3GdbGMx1eRH9P1HMJp9fQI8CKPMRcVNsH8Cy6TjELGIwb_gCJ9wixrNi286H8RrJv7yNo01"
    b"zzHTBQTqw-1e50ullWlgI4JIKCJUvpXG7oPHge-yaGduyUdh9V6r52V_ydO-FOG3zg=="
)


def _sealer(keyring: str, *, opens_fernet: bool = False) -> sealing.Sealer:
    return sealing.Sealer(sealing.parse_keys(keyring, origin="TEST_KEY"), opens_fernet=opens_fernet)


def test_a_sealed_value_opens_in_its_own_context_and_nowhere_else() -> None:
    box = _sealer(sealing.new_key())
    sealed = box.seal(b"Export-Password-1", context="batch:1:0")
    assert b"Export-Password-1" not in sealed
    assert box.open(sealed, context="batch:1:0") == b"Export-Password-1"
    with pytest.raises(sealing.Unsealable):
        box.open(sealed, context="batch:1:1")


def test_the_same_value_sealed_twice_gives_different_ciphertexts() -> None:
    box = _sealer(sealing.new_key())
    assert box.seal(b"same", context="c") != box.seal(b"same", context="c")


def test_an_altered_or_truncated_value_does_not_open() -> None:
    box = _sealer(sealing.new_key())
    sealed = bytearray(box.seal(b"secret", context="c"))
    sealed[-1] ^= 1
    for broken in (bytes(sealed), bytes(sealed[:20]), b"", b"\x02" + bytes(sealed[1:])):
        with pytest.raises(sealing.Unsealable):
            box.open(broken, context="c")


def test_a_keyring_seals_with_its_first_key_and_opens_with_every_key() -> None:
    old, new = sealing.new_key(), sealing.new_key()
    sealed_before = _sealer(old).seal(b"before", context="c")
    rotating = _sealer(f"{new}, {old}")
    assert rotating.open(sealed_before, context="c") == b"before"
    sealed_after = rotating.seal(b"after", context="c")
    assert _sealer(new).open(sealed_after, context="c") == b"after"
    with pytest.raises(sealing.Unsealable):
        _sealer(old).open(sealed_after, context="c")


def test_a_password_staged_by_the_previous_code_opens_with_the_shared_sealer() -> None:
    assert _sealer(STAGING_KEY).open(STAGED, context="batch:7:3") == "Export-Password-\u00e9 1".encode()


def test_a_fernet_token_written_by_the_previous_code_opens_only_where_fernet_is_accepted() -> None:
    plain = _sealer(SECRETS_KEY, opens_fernet=True).open(CREDENTIAL, context="anything")
    assert plain == b'{"secret": "client-secret-\\u00e9", "kind": "secret"}'
    with pytest.raises(sealing.Unsealable):
        _sealer(SECRETS_KEY).open(CREDENTIAL, context="anything")
    with pytest.raises(sealing.Unsealable):
        _sealer(sealing.new_key(), opens_fernet=True).open(CREDENTIAL, context="anything")


def test_a_fernet_token_opens_under_any_key_of_the_keyring() -> None:
    old = Fernet.generate_key()
    token = Fernet(old).encrypt(b"rotated")
    keyring = f"{sealing.new_key()},{old.decode()}"
    assert _sealer(keyring, opens_fernet=True).open(token, context="") == b"rotated"


def test_keys_are_read_in_either_base64_alphabet() -> None:
    raw = bytes([251, 255, 190] * 10 + [0, 1])
    standard = base64.b64encode(raw).decode()
    url_safe = base64.urlsafe_b64encode(raw).decode()
    assert "+" in standard and "-" in url_safe
    assert sealing.parse_keys(f"{standard},{url_safe}", origin="K") == [raw, raw]
    assert len(base64.urlsafe_b64decode(sealing.new_key())) == sealing.KEY_BYTES


@pytest.mark.parametrize(
    "keyring",
    ["", " , ", "not base64!", base64.b64encode(bytes(16)).decode(), f"{sealing.new_key()},short"],
)
def test_an_unusable_keyring_is_refused_naming_its_setting(keyring: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="PORTAL_STAGING_KEY"):
        sealing.parse_keys(keyring, origin="PORTAL_STAGING_KEY")


def test_the_sealer_for_a_setting_follows_a_changed_value() -> None:
    first, second = sealing.new_key(), sealing.new_key()
    sealed = sealing.sealer(first, origin="K").seal(b"x", context="c")
    assert sealing.sealer(first, origin="K").open(sealed, context="c") == b"x"
    with pytest.raises(sealing.Unsealable):
        sealing.sealer(second, origin="K").open(sealed, context="c")


@pytest.mark.django_db
def test_a_sealed_value_read_back_from_a_binary_column_opens() -> None:
    # PostgreSQL hands bytea back as a memoryview, SQLite as bytes: both must open.
    box = _sealer(sealing.new_key())
    sealed = box.seal(b"stored", context="row:1")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE sealing_probe (value BYTEA)")
        try:
            cursor.execute("INSERT INTO sealing_probe (value) VALUES (%s)", [sealed])
            cursor.execute("SELECT value FROM sealing_probe")
            (stored,) = cursor.fetchone()
        finally:
            cursor.execute("DROP TABLE sealing_probe")
    assert box.open(stored, context="row:1") == b"stored"
    assert box.open(memoryview(sealed), context="row:1") == b"stored"

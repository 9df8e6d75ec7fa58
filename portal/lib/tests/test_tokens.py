"""Bearer secrets: fresh each time, stored as a hash, shown by a hint, redeemed once before they expire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from portal.lib import tokens
from portal.lib.refusal import Refused

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Token:
    used_at: datetime | None
    expires_at: datetime


def test_a_new_secret_carries_its_prefix_and_is_never_issued_twice() -> None:
    first, second = tokens.new("pfxe_"), tokens.new("pfxe_")

    assert first.startswith("pfxe_") and len(first) > 40
    assert first != second


def test_the_stored_hash_matches_the_same_secret_only() -> None:
    secret = tokens.new("pfxc_")

    assert tokens.hash_secret(secret) == tokens.hash_secret(secret)
    assert tokens.hash_secret(secret) != tokens.hash_secret(secret + "x")
    assert secret not in tokens.hash_secret(secret)


def test_the_hint_shows_the_prefix_and_four_characters() -> None:
    assert tokens.hint("pfxt_abcdefgh", "pfxt_") == "pfxt_abcd"


def test_an_unused_token_before_its_expiry_is_redeemable() -> None:
    row = Token(used_at=None, expires_at=NOW + timedelta(hours=1))

    assert tokens.redeemable(row, NOW, "enrollment token") is row


@pytest.mark.parametrize(
    ("row", "code", "message"),
    [
        (None, "invalid_token", "The enrollment token is not known."),
        (
            Token(used_at=NOW, expires_at=NOW + timedelta(hours=1)),
            "token_used",
            "The enrollment token has already been used.",
        ),
        (Token(used_at=None, expires_at=NOW), "token_expired", "The enrollment token has expired."),
    ],
)
def test_an_unknown_used_or_expired_token_is_refused_saying_which(
    row: Token | None, code: str, message: str
) -> None:
    with pytest.raises(Refused) as refused:
        tokens.redeemable(row, NOW, "enrollment token")

    assert (refused.value.code, refused.value.message, refused.value.status) == (code, message, 401)

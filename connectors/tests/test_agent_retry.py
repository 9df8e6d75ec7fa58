"""The agent's retry rule for calls made before its main loop (enrolment, publishing the key)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from connectors.agent import runner
from connectors.agent.client import ApiError


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def _answers(*outcomes: Exception | dict[str, Any]) -> Any:
    pending = list(outcomes)

    def call() -> dict[str, Any]:
        outcome = pending.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return call


def test_a_proxy_error_or_a_refused_connection_is_retried_with_a_growing_pause(pauses):
    call = _answers(
        ConnectionRefusedError(111, "Connection refused"),
        ApiError(502, "http_error", "Bad Gateway"),
        ApiError(429, "rate_limited", "slow down"),
        {"fingerprint": "f"},
    )
    assert runner.retrying("publishing the key", call) == {"fingerprint": "f"}
    assert pauses == [1.0, 2.0, 4.0]


def test_the_pause_stops_growing_at_a_minute(pauses):
    call = _answers(*[TimeoutError("timed out")] * 9, {})
    runner.retrying("enrolling", call)
    assert max(pauses) == runner.MAX_BACKOFF_SECONDS and pauses[-2:] == [60.0, 60.0]


def test_a_refusal_or_a_bad_request_is_final(pauses):
    for final in (ApiError(401, "token_used", "used"), ApiError(409, "key_name_conflict", "taken")):
        with pytest.raises(ApiError) as raised:
            runner.retrying("enrolling", _answers(final))
        assert raised.value is final
    assert pauses == []

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


class _Stop(Exception):
    pass


def _idle_agent(tmp_path: Any, found: list[int]) -> runner.Agent:
    """An agent whose portal answers each claim with the next count of ``found`` jobs."""
    agent = runner.Agent(runner.Config("http://portal.invalid", tmp_path, "passphrase", "P", "K"))
    agent.client.credential = "pfxc_enrolled"
    agent.open_key = lambda: None  # type: ignore[method-assign,assignment,return-value]
    agent.publish_key = lambda: {}  # type: ignore[method-assign]
    agent.heartbeat = lambda: {}  # type: ignore[method-assign]

    def work_once(limit: int = 50) -> int:
        if not found:
            raise _Stop
        return found.pop(0)

    agent.work_once = work_once  # type: ignore[method-assign]
    return agent


def test_an_idle_agent_asks_for_jobs_less_often_up_to_every_five_seconds(tmp_path, pauses):
    with pytest.raises(_Stop):
        _idle_agent(tmp_path, [0] * 8).run()
    assert pauses == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]


def test_after_finding_work_the_agent_asks_again_at_once_then_soon(tmp_path, pauses):
    with pytest.raises(_Stop):
        _idle_agent(tmp_path, [0, 0, 0, 50, 3, 0, 0]).run()
    assert pauses == [0.2, 0.4, 0.8, 0.2, 0.4]

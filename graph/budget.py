"""A write budget shared by every worker, so uploads pace themselves under Intune's limit instead of hitting 429s.

Intune documents 100 writes per 20 seconds per app and tenant. The service counts a
write when it arrives, which is some time after we send it and before its answer
comes back. So a write holds its place in the window from the moment it is sent
(counted as "in flight") until ``window`` seconds after its answer: however the
network delays it, the service never sees more than ``limit`` writes in any window.
A write whose worker died stops counting ``IN_FLIGHT_TTL`` seconds after it started.

A 429 pauses every worker until the time the service asked for. With Redis
configured the window is a sorted set changed by small Lua scripts; otherwise it is
a JSON file under an exclusive file lock in the data folder (one machine, as in the demo).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings

KEY = "graph:write-budget"
# Longer than a request may take (the client's timeout is 30 s).
IN_FLIGHT_TTL = 60.0
# How often a waiting worker looks again while the oldest write is still in flight.
POLL = 0.05

_TAKE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local window, limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
if pause > t then return tostring(pause - t) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], t + ttl, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil((window + ttl) * 1000))
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - t)
"""
_DONE = """
local now = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'XX', tonumber(now[1]) + tonumber(now[2]) / 1000000, ARGV[1])
return 1
"""
_PAUSE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local until_ = t + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > current then
  redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 1
"""


class WriteBudget:
    def __init__(
        self,
        *,
        limit: int,
        window: float,
        redis_url: str = "",
        path: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.window = window
        self.sleep = sleep
        self.path = path
        self._redis: Any = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url)
            self._take = self._redis.register_script(_TAKE)
            self._done = self._redis.register_script(_DONE)
            self._pause = self._redis.register_script(_PAUSE)
        elif path is None:
            raise ValueError("a Redis URL or a state file is required")

    @classmethod
    def shared(cls, *, limit: int, window: float) -> WriteBudget:
        """The budget every process of this deployment shares (Redis if configured, else a file)."""
        return cls(
            limit=limit,
            window=window,
            redis_url=settings.REDIS_URL,
            path=Path(settings.DATA_DIR) / "graph-write-budget.json",
        )

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wrap one write request: waits for room in the window, then holds it until the answer is in."""
        if self.limit <= 0:
            yield
            return
        member = uuid.uuid4().hex
        while True:
            wait = self._try(member)
            if wait <= 0:
                break
            self.sleep(min(wait, POLL) if wait > IN_FLIGHT_TTL / 2 else min(wait, 5.0))
        try:
            yield
        finally:
            self._finish(member)

    def acquire(self) -> None:
        """Take a place for a write whose answer will not be reported (it counts as in flight for a while)."""
        with self.slot():
            pass

    def pause(self, seconds: float) -> None:
        """Every worker holds its writes for ``seconds`` (the service said so with a 429)."""
        if seconds <= 0:
            return
        if self._redis is not None:
            self._pause(keys=[f"{KEY}:pause"], args=[seconds])
            return
        with _FileState(self._file()) as state:
            state["pause_until"] = max(float(state.get("pause_until", 0)), time.time() + seconds)

    def _try(self, member: str) -> float:
        if self._redis is not None:
            return float(
                self._take(keys=[KEY, f"{KEY}:pause"], args=[self.window, self.limit, IN_FLIGHT_TTL, member])
            )
        with _FileState(self._file()) as state:
            now = time.time()
            pause_until = float(state.get("pause_until", 0))
            if pause_until > now:
                return pause_until - now
            writes: dict[str, float] = {
                k: float(v) for k, v in state.get("writes", {}).items() if v > now - self.window
            }
            state["writes"] = writes
            if len(writes) < self.limit:
                writes[member] = now + IN_FLIGHT_TTL
                return 0.0
            return min(writes.values()) + self.window - now

    def _finish(self, member: str) -> None:
        if self._redis is not None:
            self._done(keys=[KEY], args=[member])
            return
        with _FileState(self._file()) as state:
            writes = state.get("writes", {})
            if member in writes:
                writes[member] = time.time()

    def _file(self) -> Path:
        assert self.path is not None
        return self.path


class _FileState:
    """The budget's JSON state, read and written under an exclusive lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state: dict[str, Any] = {}

    def __enter__(self) -> dict[str, Any]:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        raw = b""
        while chunk := os.read(self.fd, 65536):
            raw += chunk
        try:
            loaded = json.loads(raw) if raw else {}
        except ValueError:
            loaded = {}
        self.state = loaded if isinstance(loaded, dict) else {}
        if not isinstance(self.state.get("writes"), dict):
            self.state["writes"] = {}
        return self.state

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                data = json.dumps(self.state).encode()
                os.lseek(self.fd, 0, os.SEEK_SET)
                os.ftruncate(self.fd, 0)
                os.write(self.fd, data)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)

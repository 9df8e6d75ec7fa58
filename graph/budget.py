"""A write budget shared by every worker, so uploads pace themselves under Intune's limit instead of hitting 429s.

Intune documents 100 writes per 20 seconds per app and tenant. The budget is a
sliding window: a write may start when fewer than ``limit`` writes started in the
last ``window`` seconds (plus a small margin for the network). A 429 pauses every
worker until the time the service asked for. With Redis configured the window is a
sorted set updated by one Lua script; otherwise it is a JSON file under an
exclusive file lock in the data folder (one machine, as in the demo).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

KEY = "graph:write-budget"

_LUA = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
if pause > t then return tostring(pause - t) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], t, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - t)
"""
_PAUSE_LUA = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local until_ = t + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > current then redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000) end
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
        # Requests reach the service a little after they leave; keep that much in hand.
        self.window = window + min(0.25, window * 0.025)
        self.sleep = sleep
        self._redis: Any = None
        self.path = path
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url)
            self._take = self._redis.register_script(_LUA)
            self._pause = self._redis.register_script(_PAUSE_LUA)
        elif path is None:
            raise ValueError("a Redis URL or a state file is required")

    @classmethod
    def shared(cls, *, limit: int, window: float) -> WriteBudget:
        """The budget every process of this deployment shares (Redis if configured, else a file)."""
        return cls(
            limit=limit,
            window=window,
            redis_url=str(getattr(settings, "REDIS_URL", "") or ""),
            path=Path(settings.DATA_DIR) / "graph-write-budget.json",
        )

    def acquire(self) -> None:
        """Block until a write may start, then count it."""
        if self.limit <= 0:
            return
        while True:
            wait = self._try()
            if wait <= 0:
                return
            self.sleep(min(wait, 5.0))

    def pause(self, seconds: float) -> None:
        """Every worker holds its writes for ``seconds`` (the service said so with a 429)."""
        if seconds <= 0:
            return
        if self._redis is not None:
            self._pause(keys=[f"{KEY}:pause"], args=[seconds])
            return
        with self._locked() as state:
            state["pause_until"] = max(float(state.get("pause_until", 0)), time.time() + seconds)

    def _try(self) -> float:
        if self._redis is not None:
            return float(
                self._take(keys=[KEY, f"{KEY}:pause"], args=[self.window, self.limit, uuid.uuid4().hex])
            )
        with self._locked() as state:
            now = time.time()
            pause_until = float(state.get("pause_until", 0))
            if pause_until > now:
                return pause_until - now
            writes = [t for t in state.get("writes", []) if t > now - self.window]
            if len(writes) < self.limit:
                writes.append(now)
                state["writes"] = writes
                return 0.0
            state["writes"] = writes
            return float(min(writes)) + self.window - now

    def _locked(self) -> _FileState:
        assert self.path is not None
        return _FileState(self.path)


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

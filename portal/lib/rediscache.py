"""Django's Redis cache, with one client object per connection pool instead of one per call.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` around the pool on every
cache call, which costs about twice what the GET itself does; every signed-in page reads its
session through the cache. A ``redis.Redis`` is safe to share between threads (each command
takes a connection from the pool), so one per pool is kept.

``count_in_window`` counts calls in a fixed window (the API's rate limit) in one round trip and one
command (a script run by its digest), where ``add`` + ``incr`` take up to three (Django's ``incr``
asks whether the key exists first) and a MULTI transaction has four replies to read.
``over_limit`` does the same with a plain INCR, the lightest command there is (one round trip but
for a window's first call), for the limits checked on every device and connector request.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class _SharedClients(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)  # type: ignore[attr-defined]
        client = self._clients.get(index)
        if client is None:
            client = self._clients.setdefault(index, super().get_client(key, write=write))
        return client


_COUNT_IN_WINDOW = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _SharedClients
        self._scripts: dict[int, Any] = {}

    def count_in_window(self, key: str, timeout: int) -> int:
        """Add one to the counter ``key``, which expires ``timeout`` seconds after its first count,
        and return the count (INCR, and EXPIRE on the first count, in one atomic script)."""
        key = self.make_and_validate_key(key)
        client = self._cache.get_client(key, write=True)
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts.setdefault(id(client), client.register_script(_COUNT_IN_WINDOW))
        return int(script(keys=[key], args=[timeout]))

    def over_limit(self, key: str, limit: int, timeout: int) -> bool:
        """Count one more call in the window ``key`` (it ends ``timeout`` seconds after its first
        call); whether the window now holds more than ``limit`` calls."""
        key = self.make_and_validate_key(key)
        client = self._cache.get_client(key, write=True)
        count = int(client.incr(key))
        if count == 1:
            client.expire(key, timeout)
        elif count > limit and client.ttl(key) < 0:
            # A window whose first call's process died before giving it its end: it ends now.
            client.expire(key, timeout)
        return count > limit

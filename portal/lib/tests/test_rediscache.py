from __future__ import annotations

import os

import pytest

from portal.lib.rediscache import RedisCache

REDIS_URL = os.environ.get("REDIS_URL", "")


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL")
def test_the_redis_cache_reads_and_writes_through_one_shared_client_per_pool() -> None:
    cache = RedisCache(REDIS_URL, {"KEY_PREFIX": "rediscache-test"})
    cache.set("answer", {"value": 42}, 30)
    assert cache.get("answer") == {"value": 42}
    assert cache.get_many(["answer", "missing"]) == {"answer": {"value": 42}}
    assert cache._cache.get_client() is cache._cache.get_client()
    assert cache._cache.get_client(write=True) is cache._cache.get_client(write=True)
    cache.delete("answer")
    assert cache.get("answer") is None


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL")
def test_a_window_count_starts_at_one_counts_on_and_expires_with_its_window() -> None:
    cache = RedisCache(REDIS_URL, {"KEY_PREFIX": "rediscache-test"})
    cache.delete("window")
    assert [cache.count_in_window("window", 30) for _ in range(3)] == [1, 2, 3]
    assert cache.get("window") == 3
    key = cache.make_and_validate_key("window")
    assert 0 < cache._cache.get_client(key).ttl(key) <= 30
    cache.delete("window")


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL")
def test_a_limit_is_passed_after_its_count_and_its_window_expires_even_if_its_first_call_died() -> None:
    cache = RedisCache(REDIS_URL, {"KEY_PREFIX": "rediscache-test"})
    cache.delete("limited")
    assert [cache.over_limit("limited", 2, 30) for _ in range(3)] == [False, False, True]
    assert cache.get("limited") == 3
    key = cache.make_and_validate_key("limited")
    client = cache._cache.get_client(key)
    assert 0 < client.ttl(key) <= 30
    # A first call that counted but died before the window got its end.
    client.persist(key)
    assert cache.over_limit("limited", 2, 30) is True
    assert 0 < client.ttl(key) <= 30
    cache.delete("limited")

"""Fail fast, with a clear message, when PostgreSQL or Redis cannot be reached."""

from __future__ import annotations

import sys
import time

import psycopg
import redis


def main(pg_url: str, redis_url: str) -> int:
    deadline = time.monotonic() + 30
    problems: list[str] = []
    while time.monotonic() < deadline:
        problems = []
        try:
            # The test database is created by the suite; the server must accept us.
            with psycopg.connect(pg_url.rsplit("/", 1)[0] + "/postgres", connect_timeout=3) as conn:
                conn.execute("select 1")
        except psycopg.Error as exc:
            problems.append(f"PostgreSQL at {pg_url}: {exc}")
        try:
            redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
        except redis.RedisError as exc:
            problems.append(f"Redis at {redis_url}: {exc}")
        if not problems:
            return 0
        time.sleep(1)
    for problem in problems:
        print(f"unreachable: {problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

"""The API over HTTP with the standard library only: bearer token, multipart bodies, problem details."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

# Exit codes a script can branch on.
OK = 0
ROWS_FAILED = 1
USAGE = 2
REFUSED = 3
NOT_ALLOWED = 4
NOT_FOUND = 5
TIMEOUT = 6
UNAVAILABLE = 7


class ApiError(Exception):
    """An answer that is not a success: the portal's problem code and message, and the exit code."""

    def __init__(
        self, status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []

    @property
    def exit_code(self) -> int:
        if self.status in (401, 403):
            return NOT_ALLOWED
        if self.status == 404:
            return NOT_FOUND
        if self.status == 429:
            return TIMEOUT
        if 400 <= self.status < 500:
            return REFUSED
        return UNAVAILABLE


@dataclass
class Multipart:
    fields: list[tuple[str, str]] = field(default_factory=list)
    files: list[tuple[str, str, bytes]] = field(default_factory=list)

    def encode(self) -> tuple[bytes, str]:
        boundary = "pfx-" + secrets.token_hex(16)
        parts: list[bytes] = []
        for name, value in self.fields:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                + value.encode()
                + b"\r\n"
            )
        for name, filename, data in self.files:
            safe = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
            parts.append(
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{safe}"\r\n'
                    "Content-Type: application/octet-stream\r\n\r\n"
                ).encode()
                + data
                + b"\r\n"
            )
        parts.append(f"--{boundary}--\r\n".encode())
        return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Client:
    def __init__(self, url: str, token: str, *, retries: int = 5, timeout: float = 300.0) -> None:
        self.base = url.rstrip("/") + "/api/v1"
        self.token = token
        self.retries = retries
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        json_body: Any = None,
        multipart: Multipart | None = None,
    ) -> Any:
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v not in (None, "")})
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        body: bytes | None = None
        if multipart is not None:
            body, headers["Content-Type"] = multipart.encode()
        elif json_body is not None:
            body, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=body, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    raw = answer.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as exc:
                error = _problem(exc)
                if exc.code == 429 and attempt < self.retries:
                    time.sleep(min(int(exc.headers.get("Retry-After") or 1), 120))
                    continue
                raise error from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise ApiError(0, "unreachable", f"Cannot reach {self.base}: {reason}") from None
        raise ApiError(429, "rate_limited", "Still rate limited after retrying.")

    def pages(self, path: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item of a cursor-paged list."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.call("GET", path, query={**query, "cursor": cursor, "limit": 500})
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items


def _problem(exc: urllib.error.HTTPError) -> ApiError:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return ApiError(
        exc.code,
        str(body.get("code") or f"http_{exc.code}"),
        str(body.get("detail") or exc.reason),
        body.get("errors") if isinstance(body.get("errors"), list) else None,
    )

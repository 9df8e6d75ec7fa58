"""The portal's connector API over HTTP, with the agent's credential."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def refused(self) -> bool:
        """The portal no longer trusts this connector (revoked, disabled or unknown)."""
        return self.status in (401, 403)

    @property
    def transient(self) -> bool:
        """The portal is overloaded, restarting or behind a proxy that cannot reach it yet."""
        return self.status == 429 or self.status >= 500


class PortalClient:
    def __init__(self, server: str, credential: str = "", timeout: float = 20.0) -> None:
        self.base = server.rstrip("/") + "/connector-api/"
        self.credential = credential
        self.timeout = timeout

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.credential:
            headers["Authorization"] = f"Bearer {self.credential}"
        request = urllib.request.Request(
            self.base + path, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return dict(json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read() or b"{}").get("error", {})
            except ValueError:
                error = {}
            raise ApiError(
                exc.code, error.get("code", "http_error"), error.get("message", str(exc))
            ) from None

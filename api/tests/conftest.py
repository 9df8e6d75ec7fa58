"""API test helpers: a token for an admin, and a client that sends it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from api import tokens
from portal.audit import Actor
from portal.models import User


class ApiClient:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.client = Client()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/v1{path}", params, headers=self._headers())

    def post(self, path: str, data: Any = None, *, json: Any = None) -> Any:
        if json is not None:
            return self.client.post(
                f"/api/v1{path}", json, content_type="application/json", headers=self._headers()
            )
        return self.client.post(f"/api/v1{path}", data or {}, headers=self._headers())

    def send(self, method: str, path: str, json: Any = None) -> Any:
        return self.client.generic(
            method,
            f"/api/v1{path}",
            b"" if json is None else __import__("json").dumps(json),
            content_type="application/json",
            headers=self._headers(),
        )

    def delete(self, path: str) -> Any:
        return self.client.delete(f"/api/v1{path}", headers=self._headers())


@pytest.fixture
def api_as() -> Callable[..., ApiClient]:
    """``api_as(admin)``: a client calling the API with a new token of ``admin``."""

    def make(admin: User, *, days: int = 30, name: str = "tests") -> ApiClient:
        _, secret = tokens.token_create(Actor.for_user(admin), user=admin, name=name, days=days)
        return ApiClient(secret)

    return make

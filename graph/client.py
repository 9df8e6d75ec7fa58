"""Talking to Microsoft Graph: sign-in with msal, retries that honour throttling, paging, and errors that keep Graph's ids.

Nothing here touches the database; :mod:`graph.connection` builds a client from the
stored connection and the write budget.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import msal
import requests

from graph.endpoints import PFX_COLLECTION

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 503, 504})
# Answers after which a write may or may not have happened (a 429 means it was not carried out).
LOST_WRITE_STATUSES = frozenset({500, 502, 503, 504})
REDACTED_BLOB = "AA=="


@dataclass(frozen=True)
class Cloud:
    key: str
    label: str
    authority_host: str
    graph_url: str

    @property
    def scope(self) -> str:
        return f"{self.graph_url}/.default"


CLOUDS = {
    "global": Cloud(
        "global",
        "Global (commercial, GCC)",
        "https://login.microsoftonline.com",
        "https://graph.microsoft.com",
    ),
    "usgov": Cloud(
        "usgov",
        "US Government (GCC High, DoD)",
        "https://login.microsoftonline.us",
        "https://graph.microsoft.us",
    ),
}


class GraphError(Exception):
    """A Graph call that failed, with everything an admin or Microsoft support needs to trace it."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        method: str = "",
        url: str = "",
        request_id: str = "",
        client_request_id: str = "",
        body: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.method = method
        self.url = url
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.body = body

    @property
    def retryable(self) -> bool:
        """Worth trying again later: throttling, a service hiccup, or no answer at all."""
        return self.status is None or self.status in RETRY_STATUSES or self.status >= 500

    def summary(self) -> str:
        status = f"HTTP {self.status}" if self.status else "no response"
        ids = (
            f" (request-id {self.request_id}, client-request-id {self.client_request_id})"
            if self.request_id
            else ""
        )
        return f"{status} {self.code + ': ' if self.code else ''}{self.message}{ids}"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "method": self.method,
            "url": self.url,
            "request_id": self.request_id,
            "client_request_id": self.client_request_id,
            "body": self.body,
        }

    @classmethod
    def from_response(cls, response: requests.Response, client_request_id: str) -> GraphError:
        code, message = "", response.reason or "error"
        try:
            payload = response.json()
        except ValueError:
            payload = None
        inner: Mapping[str, Any] = {}
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            code = str(payload["error"].get("code") or "")
            message = str(payload["error"].get("message") or message)
            inner = payload["error"].get("innerError") or {}
        elif isinstance(payload, dict) and "error_description" in payload:
            # The identity platform's own shape (sign-in failures).
            code, message = str(payload.get("error", "")), str(payload["error_description"])
        return cls(
            message,
            status=response.status_code,
            code=code,
            method=response.request.method or "",
            url=response.request.url or "",
            request_id=response.headers.get("request-id") or str(inner.get("request-id") or ""),
            client_request_id=response.headers.get("client-request-id")
            or str(inner.get("client-request-id") or client_request_id),
            body=response.text[:20000],
        )


class SignInError(GraphError):
    """msal could not get a token (wrong tenant, client id or credential, or the authority is unreachable)."""


def odata_string(value: str) -> str:
    """An OData string literal: single quotes around, single quotes inside doubled."""
    return "'" + value.replace("'", "''") + "'"


def retry_delay(response: requests.Response | None, attempt: int, *, base: float, cap: float) -> float:
    """How long to wait before attempt ``attempt + 1``: what the service asked for, else backoff with jitter."""
    if response is not None:
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            try:
                return min(cap, max(0.0, float(retry_after)))
            except ValueError:
                pass  # An HTTP date; Graph sends seconds, fall through to backoff.
        retry_ms = response.headers.get("x-ms-retry-after-ms")
        if retry_ms:
            try:
                return min(cap, max(0.0, float(retry_ms) / 1000))
            except ValueError:
                pass
    return float(min(cap, base * 2**attempt) * random.uniform(0.5, 1.0))


class TokenSource:
    """An msal confidential client for one app registration; its token cache lives as long as the process."""

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        credential: str | dict[str, str],
        cloud: Cloud,
        authority_host: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.cloud = cloud
        self.session = session or requests.Session()
        self._lock = threading.Lock()
        custom = bool(authority_host) and authority_host != cloud.authority_host
        authority = f"{(authority_host or cloud.authority_host).rstrip('/')}/{tenant_id}"
        try:
            self.app = msal.ConfidentialClientApplication(
                client_id,
                client_credential=credential,
                authority=authority,
                http_client=self.session,
                # A custom authority (the emulator) is not in Microsoft's instance list.
                instance_discovery=False if custom else None,
                token_cache=msal.TokenCache(),
            )
        except (ValueError, requests.RequestException) as exc:
            raise SignInError(
                f"Cannot reach the sign-in authority {authority}: {exc}", url=authority
            ) from exc

    def token(self) -> str:
        with self._lock:
            try:
                # msal answers from its cache while the token is fresh.
                result = self.app.acquire_token_for_client(scopes=[self.cloud.scope])
            except requests.RequestException as exc:
                raise SignInError(f"Cannot reach the sign-in authority: {exc}") from exc
        if "access_token" not in result:
            raise SignInError(
                str(result.get("error_description") or result.get("error") or "Sign-in failed"),
                code=str(result.get("error") or ""),
                request_id=str(result.get("trace_id") or ""),
                client_request_id=str(result.get("correlation_id") or ""),
                body=str({k: v for k, v in result.items() if k != "access_token"}),
            )
        return str(result["access_token"])

    def forget(self) -> None:
        with self._lock:
            for token in list(self.app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                self.app.token_cache.remove_at(token)


class GraphClient:
    """Graph calls with retries. Every POST/PATCH/DELETE attempt is sent inside ``write_slot()``
    (the shared write budget); ``on_throttle`` hears every 429 and how long it asked to wait."""

    def __init__(
        self,
        *,
        graph_url: str,
        tokens: Callable[[], str],
        session: requests.Session | None = None,
        forget_token: Callable[[], None] | None = None,
        write_slot: Callable[[], AbstractContextManager[object]] | None = None,
        on_throttle: Callable[[float], None] | None = None,
        max_attempts: int = 6,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.graph_url = graph_url.rstrip("/")
        self.tokens = tokens
        self.session = session or requests.Session()
        self.forget_token = forget_token
        self.write_slot = write_slot
        self.on_throttle = on_throttle
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.timeout = timeout
        self.sleep = sleep

    # --- plumbing

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else f"{self.graph_url}{path}"

    def request(
        self, method: str, path: str, *, json: Any = None, expected: tuple[int, ...] = (200,)
    ) -> requests.Response:
        url = self.url(path)
        write = method in {"POST", "PATCH", "PUT", "DELETE"}
        refreshed = False
        attempt = 0
        while True:
            client_request_id = str(uuid.uuid4())
            headers = {
                "Authorization": f"Bearer {self.tokens()}",
                "Accept": "application/json",
                "client-request-id": client_request_id,
                "return-client-request-id": "true",
            }
            try:
                with self.write_slot() if write and self.write_slot else nullcontext():
                    response = self.session.request(
                        method, url, json=json, headers=headers, timeout=self.timeout
                    )
            except requests.RequestException as exc:
                # A write may have landed before the connection broke: the caller checks and retries
                # the whole step. Reads are safe to repeat here.
                if write or attempt + 1 >= self.max_attempts:
                    raise GraphError(
                        f"No answer from Graph: {exc}",
                        method=method,
                        url=url,
                        client_request_id=client_request_id,
                    ) from exc
                self.sleep(retry_delay(None, attempt, base=self.backoff_base, cap=self.backoff_cap))
                attempt += 1
                continue
            if response.status_code in expected:
                return response
            if response.status_code == 401 and not refreshed and self.forget_token:
                refreshed = True
                self.forget_token()
                continue
            if write and response.status_code in LOST_WRITE_STATUSES:
                # The service may have carried the write out before failing to answer: sending it
                # again blind could create a second record. The caller reads the record back first.
                raise GraphError.from_response(response, client_request_id)
            if response.status_code in RETRY_STATUSES and attempt + 1 < self.max_attempts:
                delay = retry_delay(response, attempt, base=self.backoff_base, cap=self.backoff_cap)
                if response.status_code == 429 and self.on_throttle:
                    self.on_throttle(delay)
                log.info(
                    "Graph %s %s answered %s; retrying in %.2f s", method, url, response.status_code, delay
                )
                self.sleep(delay)
                attempt += 1
                continue
            raise GraphError.from_response(response, client_request_id)

    def get_json(self, path: str) -> dict[str, Any]:
        data = self.request("GET", path).json()
        return data if isinstance(data, dict) else {}

    def pages(self, path: str) -> Iterator[list[dict[str, Any]]]:
        """Every page of a collection, following ``@odata.nextLink`` to the end."""
        next_url: str | None = path
        while next_url:
            data = self.get_json(next_url)
            yield [item for item in data.get("value", []) if isinstance(item, dict)]
            next_url = data.get("@odata.nextLink")

    def all(self, path: str) -> Iterator[dict[str, Any]]:
        for page in self.pages(path):
            yield from page

    # --- users

    def find_user(self, upn: str) -> dict[str, Any] | None:
        """The directory user whose UPN is ``upn`` (quotes doubled, everything URL-encoded)."""
        expression = f"userPrincipalName eq {odata_string(upn)}"
        data = self.get_json(f"/v1.0/users?$filter={quote(expression, safe='')}")
        users = data.get("value") or []
        return users[0] if users else None

    # --- userPfxCertificates

    @staticmethod
    def pfx_id(user_object_id: str | uuid.UUID, thumbprint: str) -> str:
        return f"{str(user_object_id).replace('-', '').lower()}-{thumbprint.lower()}"

    def list_pfx(self) -> Iterator[dict[str, Any]]:
        return self.all(PFX_COLLECTION)

    def get_pfx(self, record_id: str) -> dict[str, Any] | None:
        response = self.request("GET", f"{PFX_COLLECTION}/{quote(record_id, safe='')}", expected=(200, 404))
        if response.status_code == 404:
            return None
        data = response.json()
        # The documentation's example wraps the entity in "value"; the service returns it bare.
        if isinstance(data, dict) and isinstance(data.get("value"), dict):
            data = data["value"]
        return data if isinstance(data, dict) else None

    def create_pfx(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST; ``None`` when a record with the same id exists already (409)."""
        response = self.request("POST", PFX_COLLECTION, json=body, expected=(200, 201, 409))
        if response.status_code == 409:
            return None
        data = response.json()
        return data if isinstance(data, dict) else {}

    def update_pfx(self, record_id: str, body: dict[str, Any]) -> None:
        self.request("PATCH", f"{PFX_COLLECTION}/{quote(record_id, safe='')}", json=body, expected=(200, 204))

    def delete_pfx(self, record_id: str) -> bool:
        """DELETE, then read back: True once Graph no longer has the record. A 404 counts as gone."""
        self.request("DELETE", f"{PFX_COLLECTION}/{quote(record_id, safe='')}", expected=(204, 200, 404))
        return self.get_pfx(record_id) is None

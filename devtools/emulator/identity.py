"""The emulator's identity platform: OpenID discovery and the client-credentials token call msal makes."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from devtools.emulator import oidc
from devtools.emulator.parsing import ODataError
from devtools.emulator.state import Token

if TYPE_CHECKING:
    from devtools.emulator.state import State

_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class _Handled(Exception):
    """The response has been sent already (identity-platform errors have their own shape)."""


class IdentityRoutes:
    """Mixed into the request handler."""

    body: bytes
    headers: Any
    request_id: str
    client_request_id: str
    server: Any

    @property
    def state(self) -> State:
        raise NotImplementedError

    def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        raise NotImplementedError

    def _identity(self, method: str, path: str) -> None:
        if oidc.handle(self, method, path):  # type: ignore[arg-type]  # mixed into Handler
            return
        cfg = self.state.config
        base = self.server.base_url
        segments = path.strip("/").split("/")
        if method == "GET" and path == "/common/discovery/instance":
            host = urlsplit(base).netloc
            self._send(
                200,
                {
                    "tenant_discovery_endpoint": f"{base}/{cfg.tenant_id}/v2.0/.well-known/openid-configuration",
                    "api-version": "1.1",
                    "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
                },
            )
            return
        if method == "GET" and segments[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            self._tenant(segments[0])
            tenant = cfg.tenant_id
            self._send(
                200,
                {
                    "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                    "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
                    "issuer": f"{base}/{tenant}/v2.0",
                    "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
                    "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                    "tenant_region_scope": "EU",
                },
            )
            return
        if method == "POST" and segments[1:] == ["oauth2", "v2.0", "token"]:
            self._tenant(segments[0])
            self._token()
            return
        raise ODataError(404, "NotFound", f"No such endpoint: {method} {path}")

    def _tenant(self, tenant: str) -> None:
        if tenant.lower() not in {self.state.config.tenant_id.lower(), "organizations", "common"}:
            self._oauth_error(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")

    def _oauth_error(self, status: int, error: str, description: str) -> None:
        payload = {
            "error": error,
            "error_description": description,
            "error_codes": [int(description[6:].split(":")[0])] if description.startswith("AADSTS") else [],
            "trace_id": self.request_id,
            "correlation_id": self.client_request_id,
        }
        self._send(status, payload)
        raise _Handled

    def _token(self) -> None:
        cfg = self.state.config
        form = {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}
        if form.get("grant_type") != "client_credentials":
            self._oauth_error(
                400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type."
            )
        if form.get("client_id") != cfg.client_id:
            self._oauth_error(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not found in the directory.",
            )
        if form.get("client_assertion_type") == _JWT_BEARER:
            if not _assertion_names(form.get("client_assertion", ""), cfg.client_id):
                self._oauth_error(
                    401, "invalid_client", "AADSTS700027: Client assertion failed signature validation."
                )
        elif form.get("client_secret") != cfg.client_secret:
            self._oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        if not form.get("scope", "").endswith("/.default"):
            self._oauth_error(
                400, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid."
            )
        token = secrets.token_urlsafe(32)
        with self.state.lock:
            self.state.tokens[token] = Token(time.time() + cfg.token_lifetime)
            self.state.stats.tokens += 1
        self._send(
            200,
            {
                "token_type": "Bearer",
                "expires_in": cfg.token_lifetime,
                "ext_expires_in": cfg.token_lifetime,
                "access_token": token,
            },
        )

    def _authenticate(self) -> None:
        header = self.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        with self.state.lock:
            known = self.state.tokens.get(token)
        if known is None or known.expires < time.time():
            raise ODataError(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")


def _assertion_names(assertion: str, client_id: str) -> bool:
    """Loosely read a client assertion JWT: right shape, issued by and about the app, with a thumbprint."""
    try:
        header_b64, payload_b64, _signature = assertion.split(".")
        header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
        payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    except ValueError:
        return False
    return bool(
        payload.get("iss") == client_id == payload.get("sub")
        and (header.get("x5t") or header.get("x5t#S256"))
    )

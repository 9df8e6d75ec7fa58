"""The Graph emulator over HTTP: the identity platform's token calls, the Graph endpoints, and control endpoints."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
import secrets
import time
import uuid
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from devtools.emulator import oidc
from devtools.emulator.parsing import ODataError, parse_eq_filter, pfx_certificate_thumbprints
from devtools.emulator.state import State, Token

PURPOSES = ("unassigned", "smimeEncryption", "smimeSigning", "vpn", "wifi")
PADDINGS = ("none", "pkcs1", "oaepSha1", "oaepSha256", "oaepSha384", "oaepSha512")
REDACTED_BLOB = "AA=="
PFX_PATH = "/beta/deviceManagement/userPfxCertificates"
_THUMBPRINT = re.compile(r"^[0-9a-fA-F]{40}$")
_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    state: State
    base_url: str


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per response, sent at once (headers and body apart meet delayed ACKs: 40 ms a request).
    wbufsize = -1
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing

    @property
    def state(self) -> State:
        return self.server.state

    def _dispatch(self, method: str) -> None:
        self.request_id = str(uuid.uuid4())
        self.client_request_id = self.headers.get("client-request-id") or str(uuid.uuid4())
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        path = parts.path.rstrip("/") or "/"
        with self.state.lock:
            self.state.stats.requests += 1
        try:
            if path.startswith("/_emulator/"):
                self._control(method, path)
            elif path == "/v1.0/me":
                oidc.me(self, method)
            elif path.startswith(("/v1.0/", "/beta/")):
                self._authenticate()
                self._graph(method, path)
            else:
                self._identity(method, path)
        except _Handled:
            return
        except ODataError as exc:
            if exc.status == 400:
                with self.state.lock:
                    self.state.stats.bad_requests += 1
            self._error(exc)

    def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("request-id", self.request_id)
        self.send_header("client-request-id", self.client_request_id)
        if payload is not None:
            self.send_header("Content-Type", "application/json; odata.metadata=minimal")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, exc: ODataError) -> None:
        inner = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": self.request_id,
            "client-request-id": self.client_request_id,
        }
        self._send(
            exc.status,
            {"error": {"code": exc.code, "message": exc.message, "innerError": inner}},
            exc.headers,
        )

    def _json_body(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise ODataError(400, "BadRequest", "Request body is not valid JSON.") from exc
        if not isinstance(value, dict):
            raise ODataError(400, "BadRequest", "Request body must be a JSON object.")
        return value

    # -- identity platform

    def _identity(self, method: str, path: str) -> None:
        if oidc.handle(self, method, path):
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

    # -- Graph

    def _graph(self, method: str, path: str) -> None:
        if path == PFX_PATH or path.startswith(PFX_PATH + "/") or path.startswith(PFX_PATH + "("):
            self._pfx(method, path[len(PFX_PATH) :])
            return
        if method != "GET":
            raise ODataError(405, "MethodNotAllowed", f"{method} is not supported here.")
        state = self.state
        with state.lock:
            if path == "/v1.0/users":
                items = list(state.users.values())
                if "$filter" in self.query:
                    _, _, upn = parse_eq_filter(self.query["$filter"], ["userPrincipalName"])
                    found = state.user_by_upn(upn)
                    items = [found] if found else []
                self._page(path, items)
            elif path.startswith("/v1.0/users/"):
                key = unquote(path.split("/")[3])
                user = state.users.get(key) or state.user_by_upn(key)
                if user is None:
                    raise ODataError(404, "Request_ResourceNotFound", f"Resource '{key}' does not exist.")
                self._send(200, user)
            elif path == "/v1.0/groups":
                self._page(path, list(state.groups.values()))
            elif re.fullmatch(r"/v1\.0/groups/[^/]+/(members|transitiveMembers)", path):
                group_id = path.split("/")[3]
                if group_id not in state.groups:
                    raise ODataError(
                        404, "Request_ResourceNotFound", f"Resource '{group_id}' does not exist."
                    )
                self._page(path, state.members.get(group_id, []))
            elif path == "/v1.0/deviceManagement/managedDevices":
                self._page(path, list(state.devices.values()))
            else:
                raise ODataError(
                    400, "BadRequest", f"Resource not found for the segment '{path.rsplit('/', 1)[-1]}'."
                )

    def _page(self, path: str, items: list[dict[str, Any]]) -> None:
        size = self.state.config.page_size
        if "$top" in self.query:
            try:
                size = max(1, min(size, int(self.query["$top"])))
            except ValueError as exc:
                raise ODataError(400, "BadRequest", "Invalid $top value.") from exc
        start = int(self.query.get("$skiptoken") or 0)
        chunk = items[start : start + size]
        payload: dict[str, Any] = {
            "@odata.context": f"{self.server.base_url}/{path.split('/')[1]}/$metadata",
            "value": chunk,
        }
        if start + size < len(items):
            keep = "".join(
                f"&{quote(k, safe='$')}={quote(v, safe='')}"
                for k, v in self.query.items()
                if k != "$skiptoken"
            )
            payload["@odata.nextLink"] = f"{self.server.base_url}{path}?$skiptoken={start + size}{keep}"
        self._send(200, payload)

    def _pfx(self, method: str, rest: str) -> None:
        key = ""
        if rest.startswith("/"):
            key = unquote(rest[1:])
        elif rest.startswith("("):
            key = unquote(rest[1:-1]).strip("'")
        if method in {"POST", "PATCH", "DELETE"}:
            self._spend_write()
        state = self.state
        if not key:
            if method == "GET":
                with state.lock:
                    items = [self._redacted(r) for r in state.pfx.values()]
                if "$filter" in self.query:
                    _, _, upn = parse_eq_filter(self.query["$filter"], ["userPrincipalName"])
                    items = [r for r in items if r["userPrincipalName"].lower() == upn.lower()]
                self._page(PFX_PATH, items)
                return
            if method == "POST":
                self._create()
                return
            raise ODataError(405, "MethodNotAllowed", f"{method} is not supported on the collection.")
        with state.lock:
            record = state.pfx.get(key)
            if record is None:
                raise ODataError(404, "ResourceNotFound", f"userPFXCertificate '{key}' was not found.")
            if method == "GET":
                self._send(200, self._redacted(record))
            elif method == "PATCH":
                changes = self._validated(self._json_body(), partial=True)
                changes.pop("id", None)
                record.update(changes)
                record["lastModifiedDateTime"] = _now()
                state.stats.patches += 1
                self._send(204)
            elif method == "DELETE":
                if state.config.ignored_deletes > 0:
                    state.config.ignored_deletes -= 1
                else:
                    del state.pfx[key]
                state.stats.deletes += 1
                self._send(204)
            else:
                raise ODataError(405, "MethodNotAllowed", f"{method} is not supported on an entity.")

    def _create(self) -> None:
        body = self._validated(self._json_body(), partial=False)
        state = self.state
        with state.lock:
            state.stats.posts += 1
            user = state.user_by_upn(body["userPrincipalName"])
            if user is None:
                raise ODataError(
                    400, "BadRequest", f"User '{body['userPrincipalName']}' was not found in the tenant."
                )
            record_id = f"{user['id'].replace('-', '')}-{body['thumbprint'].lower()}"
            if record_id in state.pfx:
                state.stats.conflicts += 1
                raise ODataError(
                    409, "Conflict", f"A userPFXCertificate with id '{record_id}' already exists."
                )
            now = _now()
            record = {
                "@odata.type": "#microsoft.graph.userPFXCertificate",
                "id": record_id,
                **{k: v for k, v in body.items() if not k.startswith("@") and k != "id"},
                "thumbprint": body["thumbprint"].lower(),
                "createdDateTime": now,
                "lastModifiedDateTime": now,
            }
            state.pfx[record_id] = record
            state.stats.creates += 1
            delay = state.config.create_answer_delay
        if delay:
            time.sleep(delay)
        self._send(201, self._redacted(record), {"Location": f"{self.server.base_url}{PFX_PATH}/{record_id}"})

    def _validated(self, body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
        required = (
            "thumbprint",
            "intendedPurpose",
            "userPrincipalName",
            "startDateTime",
            "expirationDateTime",
            "providerName",
            "keyName",
            "paddingScheme",
            "encryptedPfxBlob",
            "encryptedPfxPassword",
        )
        if not partial:
            missing = [name for name in required if not body.get(name)]
            if missing:
                raise ODataError(400, "BadRequest", f"Missing required properties: {', '.join(missing)}.")
        out = dict(body)
        for name, allowed in (("intendedPurpose", PURPOSES), ("paddingScheme", PADDINGS)):
            if name in body:
                match = next((v for v in allowed if v.lower() == str(body[name]).lower()), None)
                if match is None:
                    raise ODataError(
                        400,
                        "BadRequest",
                        f"Cannot convert the literal '{body[name]}' to the expected type 'microsoft.graph.{'userPfxIntendedPurpose' if name == 'intendedPurpose' else 'userPfxPaddingScheme'}'.",
                    )
                out[name] = match
        if "thumbprint" in body and not _THUMBPRINT.match(str(body["thumbprint"])):
            raise ODataError(400, "BadRequest", "The thumbprint must be 40 hexadecimal characters.")
        if "encryptedPfxBlob" in body:
            try:
                blob = base64.b64decode(str(body["encryptedPfxBlob"]), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ODataError(400, "BadRequest", "encryptedPfxBlob is not valid base64.") from exc
            thumbprints = pfx_certificate_thumbprints(blob)
            if thumbprints is None:
                raise ODataError(400, "BadRequest", "encryptedPfxBlob is not a PKCS#12 file.")
            thumbprint = str(body.get("thumbprint", "")).lower()
            if thumbprints and thumbprint and thumbprint not in thumbprints:
                raise ODataError(
                    400, "BadRequest", "The thumbprint does not match the certificate in encryptedPfxBlob."
                )
        for name in ("startDateTime", "expirationDateTime"):
            if name in body:
                try:
                    dt.datetime.fromisoformat(str(body[name]).replace("Z", "+00:00"))
                except ValueError as exc:
                    raise ODataError(
                        400, "BadRequest", f"Cannot convert '{body[name]}' to Edm.DateTimeOffset."
                    ) from exc
        return out

    @staticmethod
    def _redacted(record: dict[str, Any]) -> dict[str, Any]:
        # Secrets are write-only: Graph returns one zero byte and an empty string.
        return {**record, "encryptedPfxBlob": REDACTED_BLOB, "encryptedPfxPassword": ""}

    def _spend_write(self) -> None:
        state = self.state
        cfg = state.config
        if cfg.write_latency:
            time.sleep(cfg.write_latency)
        with state.lock:
            now = time.monotonic()
            if cfg.write_limit > 0:
                while state.writes and state.writes[0] <= now - cfg.write_window:
                    state.writes.popleft()
                if len(state.writes) >= cfg.write_limit:
                    state.stats.throttled += 1
                    wait = state.writes[0] + cfg.write_window - now
                    headers = {}
                    if cfg.retry_after == "seconds":
                        headers["Retry-After"] = str(max(1, math.ceil(wait)))
                    elif cfg.retry_after == "ms":
                        headers["x-ms-retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
                    raise ODataError(429, "TooManyRequests", "Too many requests.", headers)
                state.writes.append(now)
            if not state.stats.first_write:
                state.stats.first_write = now
            state.stats.last_write = now

    # -- control (not part of Graph)

    def _control(self, method: str, path: str) -> None:
        state = self.state
        with state.lock:
            if path == "/_emulator/stats" and method == "GET":
                self._send(200, {**asdict(state.stats), "records": len(state.pfx)})
            elif path == "/_emulator/config" and method in {"GET", "POST"}:
                for name, value in self._json_body().items() if method == "POST" else ():
                    if not hasattr(state.config, name):
                        raise ODataError(400, "BadRequest", f"Unknown setting {name}.")
                    setattr(state.config, name, type(getattr(state.config, name))(value))
                self._send(200, asdict(state.config))
            elif path == "/_emulator/reset" and method == "POST":
                state.reset_certificates()
                self._send(204)
            else:
                raise ODataError(404, "NotFound", f"No such control endpoint: {method} {path}")


class _Handled(Exception):
    """The response has been sent already (identity-platform errors have their own shape)."""


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


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")

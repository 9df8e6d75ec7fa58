"""The Graph emulator over HTTP: the identity platform's token calls, the Graph endpoints, and control endpoints."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from devtools.emulator import oidc, schema
from devtools.emulator.identity import IdentityRoutes, _Handled
from devtools.emulator.intune import IntuneRoutes
from devtools.emulator.parsing import ODataError, parse_eq_filter, pfx_certificate_thumbprints
from devtools.emulator.state import State

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


class Handler(IdentityRoutes, IntuneRoutes, BaseHTTPRequestHandler):
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
        self._answer_lost = False
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
        graph_write = self.command in {"POST", "PATCH", "DELETE"} and self.path.startswith(
            ("/v1.0/", "/beta/")
        )
        if status < 300 and graph_write and self._lose_answer():
            # The write was carried out; its answer is lost on the way (a gateway timing out).
            status, headers = (
                self.state.config.lost_answer_status
                if not self._answer_lost
                else self.state.random.choice((502, 504)),
                {},
            )
            payload = {
                "error": {
                    "code": "GatewayTimeout" if status == 504 else "ServiceUnavailable",
                    "message": "The service did not answer in time.",
                    "innerError": {
                        "request-id": self.request_id,
                        "client-request-id": self.client_request_id,
                    },
                }
            }
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

    def _lose_answer(self) -> bool:
        with self.state.lock:
            if self._answer_lost:
                self.state.stats.lost_answers += 1
                return True
            if self.state.config.lost_answers <= 0:
                return False
            self.state.config.lost_answers -= 1
            self.state.stats.lost_answers += 1
            return True

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

    # -- Graph

    def _graph(self, method: str, path: str) -> None:
        if method == "GET":
            self._spend_read()
        if path == PFX_PATH or path.startswith(PFX_PATH + "/") or path.startswith(PFX_PATH + "("):
            self._pfx(method, path[len(PFX_PATH) :])
            return
        if self.intune(method, path):
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
                self._page(path, items, version="v1.0", type_name="user")
            elif path.startswith("/v1.0/users/"):
                key = unquote(path.split("/")[3])
                user = state.users.get(key) or state.user_by_upn(key)
                if user is None:
                    raise ODataError(404, "Request_ResourceNotFound", f"Resource '{key}' does not exist.")
                chosen = schema.check_select("v1.0", "user", self.query)
                self._send(200, schema.project("v1.0", "user", user, chosen))
            elif path == "/v1.0/groups":
                self._page(path, list(state.groups.values()), version="v1.0", type_name="group")
            elif re.fullmatch(r"/v1\.0/groups/[^/]+/(members|transitiveMembers)", path):
                group_id = path.split("/")[3]
                if group_id not in state.groups:
                    raise ODataError(
                        404, "Request_ResourceNotFound", f"Resource '{group_id}' does not exist."
                    )
                self._page(path, state.members.get(group_id, []))
            elif path in ("/v1.0/deviceManagement/managedDevices", "/beta/deviceManagement/managedDevices"):
                version = path.split("/")[1]
                self._page(
                    path,
                    list(state.devices.values()),
                    version=version,
                    type_name="managedDevice",
                    convert=lambda d: _device_as(version, d),
                )
            else:
                raise ODataError(
                    400, "BadRequest", f"Resource not found for the segment '{path.rsplit('/', 1)[-1]}'."
                )

    def _page(
        self,
        path: str,
        items: list[dict[str, Any]],
        *,
        version: str = "",
        type_name: str = "",
        convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        chosen = schema.check_select(version, type_name, self.query) if type_name else None
        size = self.state.config.page_size
        if "$top" in self.query:
            try:
                size = max(1, min(size, int(self.query["$top"])))
            except ValueError as exc:
                raise ODataError(400, "BadRequest", "Invalid $top value.") from exc
        start = int(self.query.get("$skiptoken") or 0)
        chunk = items[start : start + size]
        if convert is not None:
            chunk = [convert(item) for item in chunk]
        if type_name:
            # Only the page served is projected: a large collection is read in as many pages as it has.
            chunk = [schema.project(version, type_name, item, chosen) for item in chunk]
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
                self._page(PFX_PATH, items, version="beta", type_name="userPFXCertificate")
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
                chosen = schema.check_select("beta", "userPFXCertificate", self.query)
                self._send(200, schema.project("beta", "userPFXCertificate", self._redacted(record), chosen))
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
        if "@odata.type" in body:
            schema.resolve_type(body["@odata.type"], ["userPFXCertificate"])
        schema.check_body("beta", "userPFXCertificate", body, allow_server_owned=True, enums={})
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
            state.stats.writes += 1
            if not state.stats.first_write:
                state.stats.first_write = now
            state.stats.last_write = now
            roll = state.random.random() if cfg.fault_rate > 0 else 1.0
            if roll < cfg.fault_rate / 2:
                state.stats.refused_faults += 1
                raise ODataError(503, "ServiceUnavailable", "The service is temporarily unavailable.")
            # The other half of the faults are carried out, and their answer is lost (see _send).
            self._answer_lost = roll < cfg.fault_rate

    def _spend_read(self) -> None:
        state = self.state
        cfg = state.config
        with state.lock:
            now = time.monotonic()
            state.stats.reads += 1
            if cfg.read_limit <= 0:
                return
            while state.read_times and state.read_times[0] <= now - cfg.read_window:
                state.read_times.popleft()
            if len(state.read_times) >= cfg.read_limit:
                state.stats.read_throttled += 1
                wait = state.read_times[0] + cfg.read_window - now
                headers = (
                    {"Retry-After": str(max(1, math.ceil(wait)))} if cfg.retry_after == "seconds" else {}
                )
                raise ODataError(429, "TooManyRequests", "Too many requests.", headers)
            state.read_times.append(now)

    # -- control (not part of Graph)

    def _control(self, method: str, path: str) -> None:
        if self.intune_control(method, path):
            return
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


_V1_ENROLLMENT_TYPES = frozenset(
    [
        "unknown",
        "userEnrollment",
        "deviceEnrollmentManager",
        "appleBulkWithUser",
        "appleBulkWithoutUser",
        "windowsAzureADJoin",
        "windowsBulkUserless",
        "windowsAutoEnrollment",
        "windowsBulkAzureDomainJoin",
        "windowsCoManagement",
        "windowsAzureADJoinUsingDeviceAuth",
        "appleUserEnrollment",
        "appleUserEnrollmentWithServiceAccount",
    ]
)


def _device_as(version: str, device: dict[str, Any]) -> dict[str, Any]:
    """A managed device as ``version`` shows it: v1.0 has fewer enrollment types (the rest evolve to
    ``unknownFutureValue``) and no ``deviceType``, which ``project`` drops."""
    if version == "v1.0" and device.get("deviceEnrollmentType") not in _V1_ENROLLMENT_TYPES:
        return {**device, "deviceEnrollmentType": "unknownFutureValue"}
    return device


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")

"""The identity platform's OpenID Connect sign-in, as the emulator plays it for "Sign in with Microsoft"
and for application tokens of the portal's API.

- ``GET /{tenant}/oauth2/v2.0/authorize``: the sign-in page (one e-mail field, as Microsoft's first
  step); ``POST`` to the same address picks the directory user and redirects to ``redirect_uri``
  with a one-time ``code`` (and ``state``).
- ``POST /{tenant}/oauth2/v2.0/token`` with ``grant_type=authorization_code``: the code (for the
  same client, secret and redirect URI, PKCE checked when used) for an ``id_token`` and a delegated
  ``access_token``; with ``grant_type=client_credentials`` and a scope ``api://.../.default``: an
  app-only JWT for that API (``aud``, ``azp``/``appid``, ``tid``, ``idtyp=app``).
- ``GET /{tenant}/discovery/v2.0/keys``: the JWKS that signs them (one RSA key per emulator run).
- ``GET /v1.0/me``: the signed-in user, with Graph's ``$select`` rules, for a delegated token.

Errors have the identity platform's shape and AADSTS codes. Everything lives in memory.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.emulator.parsing import ODataError

if TYPE_CHECKING:
    from devtools.emulator.handler import Handler

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
CODE_LIFETIME = 600
# What GET /v1.0/me may $select (microsoft.graph.user's default properties and a few more).
USER_PROPERTIES = frozenset(
    {
        "id",
        "businessPhones",
        "displayName",
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
        "mailNickname",
        "companyName",
        "department",
        "accountEnabled",
        "proxyAddresses",
    }
)
DEFAULT_ME = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    scope: str
    user_id: str
    nonce: str
    challenge: str
    method: str
    expires: float


@dataclass
class OidcState:
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    kid: str = field(default_factory=lambda: secrets.token_hex(8))
    codes: dict[str, Grant] = field(default_factory=dict)
    delegated: dict[str, tuple[str, float]] = field(default_factory=dict)
    # Further app registrations (client id -> secret) beside the emulator's own client.
    apps: dict[str, str] = field(default_factory=dict)
    sign_ins: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()

        def b64(n: int) -> str:
            return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).decode().rstrip("=")

        return {
            "keys": [{"kty": "RSA", "use": "sig", "kid": self.kid, "n": b64(numbers.n), "e": b64(numbers.e)}]
        }

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})


_STATES: dict[int, OidcState] = {}
_STATES_LOCK = threading.Lock()


def state_for(server: object) -> OidcState:
    """The sign-in state of one emulator server (made on first use)."""
    with _STATES_LOCK:
        return _STATES.setdefault(id(server), OidcState())


def handle(h: Handler, method: str, path: str) -> bool:
    """Answer the request if it is one of this module's; False leaves it to the handler."""
    segments = path.strip("/").split("/")
    if len(segments) < 2:
        return False
    tail = segments[1:]
    if tail == ["oauth2", "v2.0", "authorize"] and method in ("GET", "POST"):
        h._tenant(segments[0])
        _authorize(h, method)
        return True
    if tail == ["discovery", "v2.0", "keys"] and method == "GET":
        h._tenant(segments[0])
        h._send(200, state_for(h.server).jwks())
        return True
    if tail == ["oauth2", "v2.0", "token"] and method == "POST":
        form = _form(h.body)
        if form.get("grant_type") == "authorization_code":
            h._tenant(segments[0])
            _code_token(h, form)
            return True
        if form.get("grant_type") == "client_credentials" and form.get("scope", "").startswith("api://"):
            h._tenant(segments[0])
            _app_token(h, form)
            return True
    return False


def _form(body: bytes) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def _issuer(h: Handler) -> str:
    return f"{h.server.base_url}/{h.state.config.tenant_id}/v2.0"


def _secret_ok(h: Handler, client_id: str, secret: str | None) -> bool:
    cfg = h.state.config
    apps = {cfg.client_id: cfg.client_secret, **state_for(h.server).apps}
    return client_id in apps and secrets.compare_digest(apps[client_id], secret or "")


# -- authorize


def _html(h: Handler, status: int, body: str, headers: dict[str, str] | None = None) -> None:
    data = body.encode()
    h.send_response(status)
    h.send_header("Content-Type", "text/html; charset=utf-8")
    h.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.end_headers()
    h.wfile.write(data)


def _page(title: str, inner: str) -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{inner}</main></body></html>"
    )


def _authorize(h: Handler, method: str) -> None:
    params = dict(h.query)
    if method == "POST":
        params.update(_form(h.body))
    cfg = h.state.config
    client_id = params.get("client_id", "")
    redirect_uri = params.get("redirect_uri", "")
    if client_id != cfg.client_id and client_id not in state_for(h.server).apps:
        _html(
            h,
            400,
            _page(
                "Sign in",
                f"<p role='alert'>AADSTS700016: Application with identifier '{html.escape(client_id)}' was not found in the directory.</p>",
            ),
        )
        return
    target = urlsplit(redirect_uri)
    if target.scheme not in ("http", "https") or not target.netloc:
        _html(h, 400, _page("Sign in", "<p role='alert'>AADSTS900971: No reply address provided.</p>"))
        return
    if params.get("response_type") != "code":
        _redirect(h, redirect_uri, {"error": "unsupported_response_type", "state": params.get("state", "")})
        return
    hidden = "".join(
        f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
        for k, v in params.items()
        if k != "loginfmt"
    )
    form = (
        f"<form method='post'>{hidden}"
        "<label for='loginfmt'>Email, phone, or Skype</label> "
        "<input id='loginfmt' name='loginfmt' type='email' autocomplete='username' required> "
        "<button type='submit'>Sign in</button></form>"
    )
    if method == "GET" or not params.get("loginfmt"):
        _html(h, 200, _page("Sign in to your account", form))
        return
    login = params["loginfmt"].strip().lower()
    with h.state.lock:
        user = next(
            (
                u
                for u in h.state.users.values()
                if login in {str(u.get("userPrincipalName") or "").lower(), str(u.get("mail") or "").lower()}
            ),
            None,
        )
    if user is None or not user.get("accountEnabled", True):
        error = "<p role='alert'>AADSTS50034: This username may be incorrect. Make sure you typed it correctly.</p>"
        _html(h, 200, _page("Sign in to your account", error + form))
        return
    code = secrets.token_urlsafe(32)
    oidc = state_for(h.server)
    with oidc.lock:
        oidc.codes[code] = Grant(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=params.get("scope", ""),
            user_id=str(user["id"]),
            nonce=params.get("nonce", ""),
            challenge=params.get("code_challenge", ""),
            method=params.get("code_challenge_method", "plain"),
            expires=time.time() + CODE_LIFETIME,
        )
        oidc.sign_ins += 1
    _redirect(
        h, redirect_uri, {"code": code, "state": params.get("state", ""), "session_state": str(uuid.uuid4())}
    )


def _redirect(h: Handler, uri: str, params: dict[str, str]) -> None:
    joiner = "&" if urlsplit(uri).query else "?"
    _html(h, 302, "", {"Location": uri + joiner + urlencode({k: v for k, v in params.items() if v})})


# -- token


def _pkce_ok(grant: Grant, verifier: str) -> bool:
    if not grant.challenge:
        return True
    if grant.method == "S256":
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        return secrets.compare_digest(digest, grant.challenge)
    return secrets.compare_digest(verifier, grant.challenge)


def _code_token(h: Handler, form: dict[str, str]) -> None:
    oidc = state_for(h.server)
    with oidc.lock:
        grant = oidc.codes.pop(form.get("code", ""), None)
    client_id = form.get("client_id", "")
    if grant is None or grant.expires < time.time():
        h._oauth_error(
            400, "invalid_grant", "AADSTS70008: The provided authorization code or refresh token has expired."
        )
        return
    if not _secret_ok(h, client_id, form.get("client_secret")):
        h._oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
    if grant.client_id != client_id or grant.redirect_uri != form.get("redirect_uri"):
        h._oauth_error(
            400, "invalid_grant", "AADSTS50148: The code was issued to a different client or reply address."
        )
    if not _pkce_ok(grant, form.get("code_verifier", "")):
        h._oauth_error(
            400, "invalid_grant", "AADSTS501481: The Code_Verifier does not match the code_challenge."
        )
    with h.state.lock:
        user = dict(h.state.users.get(grant.user_id) or {})
    now = int(time.time())
    lifetime = h.state.config.token_lifetime
    tenant = h.state.config.tenant_id
    common = {
        "iss": _issuer(h),
        "tid": tenant,
        "oid": grant.user_id,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
    }
    id_token = oidc.sign(
        {
            **common,
            "aud": client_id,
            "sub": hashlib.sha256(f"{grant.user_id}:{client_id}".encode()).hexdigest()[:43],
            "name": user.get("displayName"),
            "preferred_username": user.get("userPrincipalName"),
            "email": user.get("mail"),
            "ver": "2.0",
            **({"nonce": grant.nonce} if grant.nonce else {}),
        }
    )
    access = oidc.sign(
        {**common, "aud": GRAPH_APP_ID, "azp": client_id, "scp": _scp(grant.scope), "sub": grant.user_id}
    )
    with oidc.lock:
        oidc.delegated[access] = (grant.user_id, time.time() + lifetime)
    h._send(
        200,
        {
            "token_type": "Bearer",
            "scope": _scp(grant.scope),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access,
            "id_token": id_token,
        },
    )


def _scp(scope: str) -> str:
    return (
        " ".join(s for s in scope.split() if s not in {"openid", "profile", "email", "offline_access"})
        or "User.Read"
    )


def _app_token(h: Handler, form: dict[str, str]) -> None:
    client_id = form.get("client_id", "")
    if not _secret_ok(h, client_id, form.get("client_secret")):
        h._oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
    scope = form.get("scope", "")
    if not scope.endswith("/.default") or " " in scope:
        h._oauth_error(400, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid.")
    now = int(time.time())
    lifetime = h.state.config.token_lifetime
    app_object = str(uuid.uuid5(uuid.NAMESPACE_URL, client_id))
    token = state_for(h.server).sign(
        {
            "iss": _issuer(h),
            "aud": scope.removesuffix("/.default"),
            "tid": h.state.config.tenant_id,
            "azp": client_id,
            "appid": client_id,
            "azpacr": "1",
            "idtyp": "app",
            "oid": app_object,
            "sub": app_object,
            "roles": [],
            "ver": "2.0",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
        }
    )
    h._send(
        200,
        {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token},
    )


# -- Graph /me


def me(h: Handler, method: str) -> None:
    if method != "GET":
        raise ODataError(405, "MethodNotAllowed", f"{method} is not supported here.")
    header = h.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else ""
    oidc = state_for(h.server)
    with oidc.lock:
        found = oidc.delegated.get(token)
    if found is None or found[1] < time.time():
        raise ODataError(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
    selected = [p.strip() for p in h.query.get("$select", "").split(",") if p.strip()] or list(DEFAULT_ME)
    unknown = [p for p in selected if p not in USER_PROPERTIES]
    if unknown:
        raise ODataError(
            400,
            "Request_BadRequest",
            f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.user'.",
        )
    with h.state.lock:
        user = dict(h.state.users.get(found[0]) or {})
    if not user:
        raise ODataError(404, "Request_ResourceNotFound", f"Resource '{found[0]}' does not exist.")
    upn = str(user.get("userPrincipalName") or "")
    full: dict[str, Any] = {
        "businessPhones": [],
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "companyName": None,
        "mailNickname": upn.split("@")[0],
        **user,
    }
    body: dict[str, Any] = {
        "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#users({','.join(selected)})/$entity"
    }
    body.update({p: full.get(p) for p in selected})
    h._send(200, body)

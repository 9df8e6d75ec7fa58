"""Reading what a client sends the Graph emulator: OData filters and the certificates a PFX shows."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from asn1crypto import pkcs12 as asn1_pkcs12


class ODataError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def parse_string_literal(text: str) -> tuple[str, str]:
    """Read an OData string literal at the start of ``text``; return it and what follows."""
    if not text.startswith("'"):
        raise ODataError(400, "BadRequest", f"Invalid filter clause: expected a string literal at '{text}'.")
    out = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == "'":
            if text[i + 1 : i + 2] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), text[i + 1 :]
        out.append(ch)
        i += 1
    raise ODataError(400, "BadRequest", "Invalid filter clause: unterminated string literal.")


def parse_eq_filter(expression: str, properties: Iterable[str]) -> tuple[str, bool, str]:
    """``[tolower(]prop[)] eq 'value'``: the property, whether tolower() applies, and the value."""
    expression = expression.strip()
    for prop in properties:
        for prefix, lower in ((f"tolower({prop}) eq ", True), (f"{prop} eq ", False)):
            if expression.startswith(prefix):
                value, rest = parse_string_literal(expression[len(prefix) :].lstrip())
                if rest.strip():
                    raise ODataError(
                        400, "BadRequest", f"Invalid filter clause: syntax error at '{rest.strip()[:40]}'."
                    )
                return prop, lower, value
    raise ODataError(400, "BadRequest", f"Invalid filter clause: unsupported expression '{expression[:80]}'.")


def pfx_certificate_thumbprints(blob: bytes) -> list[str] | None:
    """SHA-1 thumbprints of the certificates a PFX holds in the clear (``None``: not a PFX).

    Certificates inside encrypted containers need the password, which only the
    on-premises connector can recover, so they are not checked here.
    """
    try:
        pfx = asn1_pkcs12.Pfx.load(blob)
        auth_safe = pfx["auth_safe"]["content"].native
        found: list[str] = []
        for info in asn1_pkcs12.AuthenticatedSafe.load(auth_safe):
            if info["content_type"].native != "data":
                continue
            for bag in asn1_pkcs12.SafeContents.load(info["content"].native):
                if bag["bag_id"].native == "cert_bag":
                    der = bag["bag_value"]["cert_value"].parsed.dump()
                    found.append(hashlib.sha1(der, usedforsecurity=False).hexdigest())
        return found
    except (ValueError, TypeError, KeyError):
        return None

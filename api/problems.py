"""Errors as RFC 9457 problem details, carrying the product's stable codes.

Every error the API answers has ``Content-Type: application/problem+json`` and a body with
``type``, ``title``, ``status``, ``detail`` and ``code`` (the same snake_case code a page shows
and the docs list, e.g. ``wrong_password``, ``unknown_upn``, ``too_many_files``). A rejected
upload also lists every problem found in ``errors``. Nothing a caller sent is echoed back, so
no password can appear in an answer.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from ninja import Schema

CONTENT_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
}


class ProblemError(Schema):
    code: str
    message: str
    line: int | None = None
    filename: str = ""


class Problem(Schema):
    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[ProblemError] = []


def type_of(code: str) -> str:
    return f"urn:pfx-portal:problem:{code}"


def response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    body = {
        "type": type_of(code),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        "errors": errors or [],
    }
    answer = HttpResponse(json.dumps(body), status=status, content_type=CONTENT_TYPE)
    for name, value in (headers or {}).items():
        answer[name] = value
    return answer

"""The API object: routes, authentication, problem details for every error, the OpenAPI description."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from api import problems
from api.auth import ApiAuth, RateLimited, Unauthenticated
from certs.manifest import Rejected
from portal.lib.refusal import Refused

logger = logging.getLogger(__name__)

DESCRIPTION = """Automate PFX Portal: import users' PFX files, read certificates and their delivery,
manage encryption keys and profiles. Every call carries an API token (Tenant administration > API
tokens) or an Entra ID application token, acts with its admin's roles and scope tags, and is
audited like the pages. Errors are RFC 9457 problem details with a stable `code`."""


class PortalApi(NinjaAPI):
    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        """Errors are declared as ``application/problem+json``, which is what they are sent as."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for status, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {})
                    if str(status).startswith(("4", "5")) and "application/json" in content:
                        content[problems.CONTENT_TYPE] = content.pop("application/json")
        return schema


api = PortalApi(
    title="PFX Portal API",
    version="1",
    description=DESCRIPTION,
    auth=ApiAuth(),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


@api.exception_handler(Refused)
def _refused(request: HttpRequest, exc: Refused) -> HttpResponse:
    return problems.response(exc.status, exc.code, exc.message)


@api.exception_handler(Rejected)
def _rejected(request: HttpRequest, exc: Rejected) -> HttpResponse:
    first = exc.errors[0].code if exc.errors else "rejected"
    errors = [
        {"code": e.code, "message": e.message, "line": e.line, "filename": e.filename} for e in exc.errors
    ]
    return problems.response(
        400,
        first,
        f"The upload was refused with {len(errors)} problems; nothing was imported.",
        errors=errors,
    )


@api.exception_handler(Unauthenticated)
def _unauthenticated(request: HttpRequest, exc: Unauthenticated) -> HttpResponse:
    return problems.response(401, exc.code, exc.message, headers={"WWW-Authenticate": "Bearer"})


@api.exception_handler(AuthenticationError)
def _authentication(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return problems.response(
        401, "not_authenticated", "Send an API token.", headers={"WWW-Authenticate": "Bearer"}
    )


@api.exception_handler(RateLimited)
def _rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    return problems.response(
        429,
        "rate_limited",
        f"Too many calls with this token; try again in {exc.retry_after} seconds.",
        headers={"Retry-After": str(exc.retry_after)},
    )


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return problems.response(403, "forbidden", "Your roles or scope tags do not allow this.")


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problems.response(404, "not_found", "No such object, or not one you may see.")


@api.exception_handler(NinjaValidationError)
def _invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    # Only where and what, never the value sent: it may be a password.
    errors = [
        {
            "code": "invalid_request",
            "message": f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}",
        }
        for e in exc.errors
    ]
    return problems.response(
        422, "invalid_request", "The request does not match the API description.", errors=errors
    )


@api.exception_handler(TooManyFilesSent)
def _too_many_files(request: HttpRequest, exc: Exception) -> HttpResponse:
    return problems.response(
        400, "too_many_files", "Too many files in one request; send one ZIP file instead."
    )


@api.exception_handler(TooManyFieldsSent)
def _too_many_fields(request: HttpRequest, exc: Exception) -> HttpResponse:
    return problems.response(400, "too_many_fields", "Too many fields in one request.")


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: Exception) -> HttpResponse:
    return problems.response(413, "request_too_large", "The request is larger than this portal accepts.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return problems.response(exc.status_code, "bad_request", str(exc.message))


@api.exception_handler(Exception)
def _bug(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("API call failed: %s %s", request.method, request.path)
    return problems.response(
        500, "internal_error", "Something went wrong; the request id names it in the log."
    )

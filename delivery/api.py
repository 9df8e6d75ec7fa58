"""The device API: JSON in, JSON out, the device's own credential (never a session).

Errors are ``{"error": {"code": ..., "message": ...}}``: 400 bad_request/bad_json/bad_public_key/
no_proof_of_possession/platform_mismatch, 401 invalid_credential/credential_revoked/invalid_secret/
invalid_token/token_used/token_expired, 404 unknown_device, 405, 409 replayed_report,
413 too_large, 429 rate_limited. See docs/delivery.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from connectors.api import _body, _ip, _rate_limited, _text
from delivery import checkin, credentials, results
from delivery.models import DeviceCredential
from portal.lib import refusal
from portal.lib.refusal import Refused

log = logging.getLogger(__name__)

DeviceView = Callable[[HttpRequest, DeviceCredential, dict[str, Any]], JsonResponse]
MAX_RESULTS = 100


def device_api(view: DeviceView) -> Callable[[HttpRequest], JsonResponse]:
    """Authenticate the device by its credential, parse JSON, map refusals."""

    @login_not_required
    @csrf_exempt
    @require_POST
    @refusal.answers_json
    @wraps(view)
    def wrapped(request: HttpRequest) -> JsonResponse:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            raise Refused(
                "invalid_credential", "Send 'Authorization: Bearer <device credential>'.", status=401
            )
        try:
            credential = credentials.device_authenticate(value.strip())
        except Refused as refused:
            log.warning("device API refused from %s: %s", _ip(request), refused.code)
            raise
        if _rate_limited(f"device-api:{credential.pk}", settings.DEVICE_API_RATE_PER_MINUTE):
            raise Refused("rate_limited", "Too many requests; slow down.", status=429)
        return view(request, credential, _body(request))

    return wrapped


@login_not_required
@csrf_exempt
@require_POST
@refusal.answers_json
def enroll(request: HttpRequest) -> JsonResponse:
    if _rate_limited(f"device-enroll:{_ip(request)}", settings.DEVICE_ENROLL_RATE_PER_MINUTE):
        raise Refused("rate_limited", "Too many enrolment attempts; wait a minute.", status=429)
    data = _body(request)
    try:
        credential, secret = credentials.device_enroll(
            public_key_pem=_text(data, "public_key_pem", 20_000),
            proof=_text(data, "proof", 4_000),
            platform=_text(data, "platform", 40),
            secret=_text(data, "secret", 200),
            token=_text(data, "token", 200),
            device_id=_text(data, "device_id", 40),
            agent_version=_text(data, "agent_version", 50),
            ip=_ip(request),
        )
    except Refused as refused:
        log.warning("device enrolment refused from %s: %s", _ip(request), refused.code)
        raise
    return JsonResponse(
        {"credential": secret, "device": str(credential.device.device_id), "name": credential.device.name},
        status=201,
    )


@device_api
def check_in(request: HttpRequest, credential: DeviceCredential, data: dict[str, Any]) -> JsonResponse:
    return JsonResponse(checkin.check_in(credential, ip=_ip(request)).as_json())


def _sequence(data: dict[str, Any]) -> int:
    value = data.get("sequence")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**62:
        raise Refused("bad_request", "sequence must be a positive whole number, higher for every report.")
    return value


def _results(data: dict[str, Any]) -> list[results.Result]:
    raw = data.get("results")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_RESULTS:
        raise Refused("bad_request", f"results must be a list of 1 to {MAX_RESULTS} objects.")
    found = []
    for item in raw:
        if not isinstance(item, dict):
            raise Refused("bad_request", "each result must be an object.")
        thumbprint = _text(item, "thumbprint", 40).lower()
        if len(thumbprint) != 40 or any(ch not in "0123456789abcdef" for ch in thumbprint):
            raise Refused("bad_request", "thumbprint must be 40 hexadecimal digits (SHA-1).")
        found.append(
            results.Result(
                thumbprint=thumbprint,
                result=_text(item, "result", 20),
                code=_text(item, "code", 60),
                message=_text(item, "message", 500),
            )
        )
    return found


@device_api
def report(request: HttpRequest, credential: DeviceCredential, data: dict[str, Any]) -> JsonResponse:
    try:
        sequence, items = _sequence(data), _results(data)
    except Refused as refused:
        results.log_refusal(credential, refused, _ip(request))
        raise
    answer = results.report(credential, sequence=sequence, results=items, ip=_ip(request))
    return JsonResponse({"results": answer})

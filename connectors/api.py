"""The connector agent's HTTP API: JSON in, JSON out, the agent's own credential.

Errors are ``{"error": {"code": ..., "message": ...}}`` with a fitting status:
400 bad_request/bad_json/bad_public_key/no_proof_of_possession, 401 invalid_credential/connector_revoked/invalid_token/
token_used/token_expired, 403 connector_disabled, 405, 409 key_name_conflict,
413 too_large, 429 rate_limited.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from connectors import enrolment, health, keys, reencrypt, rotation
from connectors.health import HeartbeatReport
from connectors.models import Connector, heartbeat_interval
from connectors.rotation import JobResult
from portal.lib import refusal
from portal.lib.refusal import Refused

MAX_BODY_BYTES = 256 * 1024
ConnectorView = Callable[[HttpRequest, Connector, dict[str, Any]], JsonResponse]


def _ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _body(request: HttpRequest) -> dict[str, Any]:
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
        raise Refused("too_large", f"Requests are limited to {MAX_BODY_BYTES} bytes.", status=413)
    try:
        data = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise Refused("bad_json", "The body must be a JSON object.") from exc
    if not isinstance(data, dict):
        raise Refused("bad_json", "The body must be a JSON object.")
    return data


def _rate_limited(key: str, limit: int, window: int = 60) -> bool:
    # One round trip when the window's counter exists (almost every request); it expires with
    # the window it was added for.
    over_limit = getattr(cache, "over_limit", None)  # the Redis cache: one plain INCR
    if over_limit is not None:
        return bool(over_limit(key, limit, window))
    try:
        return cache.incr(key) > limit
    except ValueError:
        if cache.add(key, 1, timeout=window):
            return limit < 1
        try:
            return cache.incr(key) > limit
        except ValueError:
            return False


def connector_api(view: ConnectorView) -> Callable[[HttpRequest], JsonResponse]:
    """Authenticate the agent by its credential (never a session), parse JSON, map refusals."""

    @login_not_required
    @csrf_exempt
    @require_POST
    @refusal.answers_json
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            raise Refused("invalid_credential", "Send 'Authorization: Bearer <credential>'.", status=401)
        connector = enrolment.connector_authenticate(credential.strip())
        limit = settings.CONNECTOR_API_RATE_PER_MINUTE
        if _rate_limited(f"connector-api:{connector.pk}", limit):
            raise Refused("rate_limited", "Too many requests; slow down.", status=429)
        return view(request, connector, _body(request), *args, **kwargs)

    return wrapped


def _text(data: dict[str, Any], name: str, limit: int = 255) -> str:
    value = data.get(name, "")
    if not isinstance(value, str):
        raise Refused("bad_request", f"{name} must be a string.")
    return value[:limit]


def _strings(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Refused("bad_request", f"{name} must be a list of strings.")
    return value[:20]


@login_not_required
@csrf_exempt
@require_POST
@refusal.answers_json
def enroll(request: HttpRequest) -> JsonResponse:
    limit = settings.CONNECTOR_ENROLL_RATE_PER_MINUTE
    if _rate_limited(f"connector-enroll:{_ip(request)}", limit):
        raise Refused("rate_limited", "Too many enrollment attempts; wait a minute.", status=429)
    data = _body(request)
    connector, credential = enrolment.connector_enroll(
        token=_text(data, "token", 200),
        name=_text(data, "name", 100),
        host_name=_text(data, "host_name"),
        version=_text(data, "version", 50),
        features=_strings(data, "features"),
        ip=_ip(request),
    )
    return JsonResponse(
        {
            "connector": str(connector.code),
            "credential": credential,
            "heartbeat_interval": heartbeat_interval(),
        },
        status=201,
    )


def _count(data: dict[str, Any], name: str) -> int:
    value = data.get(name) or 0
    # bool is an int to Python, but not a count a connector would send.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Refused("bad_request", f"{name} must be a whole number.")
    try:
        return max(0, min(int(value), 2**31 - 1))
    except ValueError as exc:
        raise Refused("bad_request", f"{name} must be a whole number.") from exc


def _heartbeat_report(data: dict[str, Any]) -> HeartbeatReport:
    tests = data.get("self_tests", [])
    if not isinstance(tests, list) or not all(isinstance(t, dict) for t in tests):
        raise Refused("bad_request", "self_tests must be a list of objects.")
    sent_at = None
    if data.get("sent_at"):
        try:
            sent_at = datetime.fromisoformat(_text(data, "sent_at", 40))
        except ValueError as exc:
            raise Refused("bad_request", "sent_at must be an ISO 8601 time.") from exc
    return HeartbeatReport(
        version=_text(data, "version", 50),
        host_name=_text(data, "host_name"),
        features=_strings(data, "features") if "features" in data else None,
        self_tests=[
            {
                "name": str(t.get("name", ""))[:50],
                "ok": bool(t.get("ok")),
                "detail": str(t.get("detail", ""))[:200],
            }
            for t in tests[:20]
        ],
        pending_work=_count(data, "pending_work"),
        sent_at=sent_at if sent_at is None or sent_at.tzinfo else None,
    )


def _job_results(data: dict[str, Any]) -> list[JobResult]:
    raw = data.get("results", [])
    if not isinstance(raw, list) or len(raw) > rotation.MAX_CLAIM:
        raise Refused("bad_request", f"results must be a list of at most {rotation.MAX_CLAIM} objects.")
    results = []
    for item in raw:
        if not isinstance(item, dict):
            raise Refused("bad_request", "each result must be an object.")
        results.append(
            JobResult(
                job=_text(item, "job", 40),
                ok=bool(item.get("ok")),
                encrypted_password=_text(item, "encrypted_password", 4096),
                error=_text(item, "error", 500),
                code=_text(item, "code", 40),
            )
        )
    return results


@connector_api
def heartbeat(request: HttpRequest, connector: Connector, data: dict[str, Any]) -> JsonResponse:
    health.heartbeat_record(connector, _heartbeat_report(data), ip=_ip(request))
    return JsonResponse(
        {
            "server_time": timezone.now().isoformat(),
            "heartbeat_interval": heartbeat_interval(),
            "status": connector.status(),
            "pending_work": rotation.pending_jobs_for(connector),
        }
    )


@connector_api
def publish_key(request: HttpRequest, connector: Connector, data: dict[str, Any]) -> JsonResponse:
    held, key = keys.key_publish(
        connector,
        provider_name=_text(data, "provider_name", 200),
        key_name=_text(data, "key_name", 200),
        public_key_pem=_text(data, "public_key_pem", 20_000),
        proof=_text(data, "proof", 2_000),
        ip=_ip(request),
    )
    return JsonResponse(
        {
            "fingerprint": held.fingerprint,
            "encryption_key": str(key.code),
            "provider_name": key.provider_name,
            "key_name": key.key_name,
        }
    )


@connector_api
def claim_jobs(request: HttpRequest, connector: Connector, data: dict[str, Any]) -> JsonResponse:
    try:
        limit = max(1, min(int(data.get("limit") or 10), rotation.MAX_CLAIM))
    except (TypeError, ValueError) as exc:
        raise Refused("bad_request", "limit must be a number.") from exc
    jobs = rotation.jobs_claim(connector, limit=limit)
    jobs += reencrypt.jobs_claim(connector, limit=limit - len(jobs))
    return JsonResponse({"jobs": jobs})


@connector_api
def post_results(request: HttpRequest, connector: Connector, data: dict[str, Any]) -> JsonResponse:
    results = _job_results(data)
    device = reencrypt.device_job_codes([r.job for r in results])
    outcome = rotation.jobs_complete(connector, [r for r in results if r.job not in device], ip=_ip(request))
    device_results = [
        reencrypt.DeviceResult(
            job=r.job, ok=r.ok, encrypted_password=r.encrypted_password, code=r.code, error=r.error
        )
        for r in results
        if r.job in device
    ]
    if device_results:
        outcome.update(reencrypt.jobs_complete(connector, device_results, ip=_ip(request)))
    return JsonResponse({"results": outcome})

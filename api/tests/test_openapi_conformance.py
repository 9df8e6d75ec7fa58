"""schemathesis drives every operation of the OpenAPI description with generated requests: no answer
may be a 500, and every answer must match the description (status, content type, body, headers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.specs.openapi import checks as openapi_checks

from api.tests.conftest import ApiClient
from certs.tests.importing import stored_certificate
from portal.models import User

# Not "schema-valid data is accepted": a generated file is no PFX and a generated key no RSA key, so
# a refusal (400 with its code) is the right answer; nor "invalid data is rejected" for unknown query
# parameters, which the API ignores as most HTTP APIs do.
CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@pytest.fixture
def token(intune_admin: User, api_as: Callable[..., ApiClient], settings: object) -> Iterator[str]:
    settings.API_RATE_LIMIT = 1_000_000  # type: ignore[attr-defined]
    stored_certificate()
    # As Django's test client does: the test's transaction must outlive each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield api_as(intune_admin).secret
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_every_generated_request_gets_an_answer_the_description_allows(
    case: schemathesis.Case[Any], token: str
) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

"""Request types for typed views."""

from __future__ import annotations

import uuid

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from portal.models import User


class AuthenticatedHttpRequest(HttpRequest):
    user: User
    htmx: HtmxDetails
    correlation_id: uuid.UUID

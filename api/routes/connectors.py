"""Connectors with their health, as the connectors page computes it."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router

from api.auth import needs
from api.common import ERRORS, user
from api.schemas import ConnectorOut
from connectors.models import Connector
from portal import access

router = Router(tags=["Connectors"])


@router.get(
    "/connectors",
    response={200: list[ConnectorOut], **ERRORS},
    summary="List connectors and their health",
    auth=needs("connectors.read"),
)
def connector_list(request: HttpRequest) -> list[ConnectorOut]:
    admin = user(request)
    now = timezone.now()
    return [
        ConnectorOut(
            code=c.code,
            name=c.name,
            host_name=c.host_name,
            version=c.version,
            state=c.state,
            status=c.status(now),
            status_reason=c.status_reason(now),
            last_seen=c.last_seen,
            clock_skew_seconds=c.clock_skew_seconds,
        )
        for c in access.scoped(Connector.objects.all(), admin)
    ]

"""The connectors' section of Home (registered in ConnectorsConfig.ready(), see portal/home.py)."""

from __future__ import annotations

from typing import Any

from connectors import health as connector_health
from connectors.models import Connector
from portal import access
from portal.http import AuthenticatedHttpRequest


def health_section(request: AuthenticatedHttpRequest) -> dict[str, Any] | None:
    user = request.user
    return {
        "connector_health": connector_health.summary_for(user),
        "reads_all_connectors": access.reads_all(user, Connector),
    }

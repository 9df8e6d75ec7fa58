"""What connector changes write besides the change: the audit category, the connector as actor,
and the connector's own event log (shown on its page)."""

from __future__ import annotations

from connectors.models import Connector, ConnectorEvent
from portal.audit import Actor

CATEGORY = "Connectors"


def connector_actor(connector: Connector, ip: str | None = None) -> Actor:
    """Changes a connector makes are audited under its name, not an admin's."""
    return Actor.connector(connector.name, ip)


def record_event(connector: Connector, event_id: int, message: str, level: str = "info") -> None:
    ConnectorEvent.objects.create(connector=connector, event_id=event_id, level=level, message=message[:500])

"""Graph calls for Intune's device configuration side (beta): profiles, their assignments, scope tags,
what devices report about a profile, and certificate connectors. Reads follow every page; writes go
through the client's write budget like certificate uploads. Each ``$select`` is in ``graph.endpoints``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from graph import endpoints as ep
from graph.client import GraphClient


def _entity(client: GraphClient, path: str) -> dict[str, Any] | None:
    response = client.request("GET", path, expected=(200, 404))
    if response.status_code == 404:
        return None
    data = response.json()
    return data if isinstance(data, dict) else None


def _config_path(config_id: str) -> str:
    return f"{ep.CONFIGURATIONS}/{quote(config_id, safe='')}"


def list_configurations(client: GraphClient) -> Iterator[dict[str, Any]]:
    """Every deviceConfiguration of the tenant (id, name, type), every page."""
    return client.all(f"{ep.CONFIGURATIONS}?$select={ep.CONFIGURATION_LIST_FIELDS}")


def get_configuration(client: GraphClient, config_id: str) -> dict[str, Any] | None:
    return _entity(client, _config_path(config_id))


def create_configuration(client: GraphClient, body: dict[str, Any]) -> dict[str, Any]:
    data = client.request("POST", ep.CONFIGURATIONS, json=body, expected=(200, 201)).json()
    return data if isinstance(data, dict) else {}


def update_configuration(client: GraphClient, config_id: str, body: dict[str, Any]) -> None:
    # Documented as 200 with the entity; Microsoft's PowerShell SDK description says 204.
    client.request("PATCH", _config_path(config_id), json=body, expected=(200, 204))


def delete_configuration(client: GraphClient, config_id: str) -> bool:
    """DELETE, then read back: True once Intune no longer has it (a 404 counts as gone)."""
    client.request("DELETE", _config_path(config_id), expected=(200, 204, 404))
    return get_configuration(client, config_id) is None


def assign(client: GraphClient, config_id: str, assignments: list[dict[str, Any]]) -> None:
    """Replace the whole set of assignments (the ``assign`` action)."""
    client.request(
        "POST", f"{_config_path(config_id)}/assign", json={"assignments": assignments}, expected=(200, 204)
    )


def list_assignments(client: GraphClient, config_id: str) -> list[dict[str, Any]]:
    return list(client.all(f"{_config_path(config_id)}/assignments"))


def role_scope_tags(client: GraphClient) -> list[dict[str, Any]]:
    return list(client.all(f"{ep.SCOPE_TAGS}?$select={ep.SCOPE_TAG_FIELDS}"))


def create_role_scope_tag(client: GraphClient, name: str, description: str) -> dict[str, Any]:
    body = {"@odata.type": "#microsoft.graph.roleScopeTag", "displayName": name, "description": description}
    data = client.request("POST", ep.SCOPE_TAGS, json=body, expected=(200, 201)).json()
    return data if isinstance(data, dict) else {}


# -- what devices report (read into the delivery status model)


def device_statuses(client: GraphClient, config_id: str) -> Iterator[list[dict[str, Any]]]:
    return client.pages(f"{_config_path(config_id)}/deviceStatuses?$select={ep.DEVICE_STATUS_FIELDS}")


def user_statuses(client: GraphClient, config_id: str) -> Iterator[list[dict[str, Any]]]:
    return client.pages(f"{_config_path(config_id)}/userStatuses?$select={ep.USER_STATUS_FIELDS}")


def device_status_overview(client: GraphClient, config_id: str) -> dict[str, Any]:
    return client.get_json(f"{_config_path(config_id)}/deviceStatusOverview?$select={ep.OVERVIEW_FIELDS}")


def certificate_states(
    client: GraphClient, config_id: str, graph_type: str
) -> Iterator[list[dict[str, Any]]]:
    """managedDeviceCertificateStates, reached through the cast to the profile's own type."""
    return client.pages(
        f"{_config_path(config_id)}/microsoft.graph.{graph_type}/managedDeviceCertificateStates"
        f"?$select={ep.CERTIFICATE_STATE_FIELDS}"
    )


# -- certificate connectors Intune knows


def certificate_connectors(client: GraphClient) -> list[dict[str, Any]]:
    return list(client.all(f"{ep.CONNECTOR_DETAILS}?$select={ep.CONNECTOR_DETAIL_FIELDS}"))


def ndes_connectors(client: GraphClient) -> list[dict[str, Any]]:
    return list(client.all(f"{ep.NDES_CONNECTORS}?$select={ep.NDES_FIELDS}"))

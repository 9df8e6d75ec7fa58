"""Microsoft's connectors as Intune lists them, beside the portal's own agents, with the same health rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from devtools.emulator.server import Emulator
from graph import intune_connectors
from graph.client import GraphClient
from graph.models import IntuneConnector, TenantConnection
from portal.models import User

pytestmark = pytest.mark.django_db


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _list(
    emulator: Emulator, now: dt.datetime, *, late_hours: float = 0.1, version: str = "6.2405.1.0"
) -> None:
    emulator.state.connector_details = [
        {
            "id": "c1",
            "connectorName": "PKI-CONN-01",
            "machineName": "pki01.contoso.local",
            "connectorVersion": version,
            "enrollmentDateTime": _iso(now - dt.timedelta(days=30)),
            "lastCheckinDateTime": _iso(now - dt.timedelta(hours=late_hours)),
        }
    ]
    emulator.state.ndes_connectors = [
        {
            "id": "n1",
            "displayName": "NDES-OLD",
            "machineName": "ndes.contoso.local",
            "connectorVersion": "6.1806.0.0",
            "lastConnectionDateTime": _iso(now - dt.timedelta(minutes=5)),
            "state": "inactive",
        }
    ]


def test_intune_connectors_are_read_with_the_portals_health_rules(
    emulator: Emulator, connected: TenantConnection, portal_graph: GraphClient, settings: Any
) -> None:
    settings.INTUNE_CONNECTOR_MIN_VERSION = "6.2301"
    now = timezone.now()
    _list(emulator, now, version="6.2203.0.0")
    assert intune_connectors.refresh(client=portal_graph, now=now) == 2
    certificate = IntuneConnector.objects.get(kind="certificate")
    assert (certificate.name, certificate.machine, certificate.status) == (
        "PKI-CONN-01",
        "pki01.contoso.local",
        "warning",
    )
    assert "support window" in certificate.status_reason
    assert IntuneConnector.objects.get(kind="ndes").status == "error"


def test_a_connector_going_silent_in_intune_alerts_once_and_coming_back_alerts_again(
    emulator: Emulator, connected: TenantConnection, portal_graph: GraphClient, intune_admin: User
) -> None:
    now = timezone.now()
    _list(emulator, now)
    intune_connectors.refresh(client=portal_graph, now=now)
    baseline = len(mail.outbox)  # the inactive NDES connector
    _list(emulator, now, late_hours=30)
    intune_connectors.refresh(client=portal_graph, now=now)
    intune_connectors.refresh(client=portal_graph, now=now)
    silent = [m for m in mail.outbox[baseline:] if "PKI-CONN-01 is error" in m.subject]
    assert len(silent) == 1 and intune_admin.email in silent[0].to
    _list(emulator, now)
    intune_connectors.refresh(client=portal_graph, now=now)
    assert any("PKI-CONN-01 is healthy" in m.subject for m in mail.outbox)


def test_the_connectors_page_shows_intune_connectors_beside_the_agents(
    emulator: Emulator,
    connected: TenantConnection,
    portal_graph: GraphClient,
    intune_admin: User,
    client: Client,
    settings: Any,
) -> None:
    settings.PORTAL_ENFORCE_MFA = False
    _list(emulator, timezone.now())
    intune_connectors.refresh(client=portal_graph)
    client.force_login(intune_admin)
    page = client.get(reverse("connectors:list")).content.decode()
    assert "Connectors known to Intune" in page
    assert "PKI-CONN-01" in page and "pki01.contoso.local" in page


def test_reading_intune_connectors_on_demand_needs_the_update_permission(
    connected: TenantConnection, intune_admin: User, helpdesk: User, client: Client, settings: Any
) -> None:
    settings.PORTAL_ENFORCE_MFA = False
    url = reverse("graph:intune_connectors_refresh")
    client.force_login(helpdesk)
    assert client.post(url).status_code == 403
    client.force_login(intune_admin)
    response = client.post(url, follow=True)
    assert "Reading the connectors Intune knows" in response.content.decode()

"""The connectors' section of Home: their health, for readers of connectors only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from portal.models import User

pytestmark = pytest.mark.django_db


def _home(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.get(reverse("home")).content.decode()


def test_a_connector_reader_sees_their_health_on_home(make_admin: Callable[..., User]) -> None:
    page = _home(make_admin("intune_administrator"))
    assert 'data-testid="connector-health"' in page and "No connectors enrolled." in page


def test_an_admin_who_may_not_read_connectors_does_not_see_it(make_admin: Callable[..., User]) -> None:
    assert 'data-testid="connector-health"' not in _home(make_admin("intune_role_administrator"))

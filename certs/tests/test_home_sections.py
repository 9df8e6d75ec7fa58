"""The certificates app's sections of Home: expiry and failed Intune uploads, for readers of certificates only."""

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


def test_a_certificate_reader_sees_expiry_and_failed_uploads_on_home(make_admin: Callable[..., User]) -> None:
    page = _home(make_admin("read_only_operator"))
    assert 'data-testid="cert-expiry"' in page and "Expiring in 7 days" in page
    assert 'data-testid="failed-uploads"' in page and "Failed uploads to Intune" in page
    assert page.index('data-testid="cert-expiry"') < page.index('data-testid="failed-uploads"')


def test_an_admin_who_may_not_read_certificates_sees_neither(make_admin: Callable[..., User]) -> None:
    page = _home(make_admin("intune_role_administrator"))
    assert 'data-testid="cert-expiry"' not in page and 'data-testid="failed-uploads"' not in page

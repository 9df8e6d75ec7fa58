"""What apps above certs add to its pages: sections of the encryption keys page, and whether stored
certificates are delivered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from certs import hooks
from certs.tests.importing import add_key
from portal.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered() -> Iterator[None]:
    """Put back what the installed apps registered once the test is done."""
    sections, delivery = dict(hooks._KEYS_SECTIONS), dict(hooks._DELIVERY)
    try:
        yield
    finally:
        hooks._KEYS_SECTIONS.clear()
        hooks._KEYS_SECTIONS.update(sections)
        hooks._DELIVERY.clear()
        hooks._DELIVERY.update(delivery)


def test_another_app_adds_sections_to_the_keys_page_in_order_and_may_hide_one(
    registered: None, helpdesk: User, settings: Any, tmp_path: Path
) -> None:
    settings.PORTAL_ENFORCE_MFA = False
    (tmp_path / "extra").mkdir()
    for name in ("first", "second"):
        (tmp_path / "extra" / f"{name}.html").write_text(
            f'<section id="{name}">{{{{ section.note }}}}: {{{{ section.keys|length }}}} key(s)</section>'
        )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], tmp_path]}]
    add_key()
    hooks.register_keys_section(
        hooks.KeysSection("extra/second.html", lambda request, keys: {"note": "second", "keys": keys}, 20)
    )
    hooks.register_keys_section(
        hooks.KeysSection("extra/first.html", lambda request, keys: {"note": "first", "keys": keys}, 5)
    )
    hooks.register_keys_section(hooks.KeysSection("extra/hidden.html", lambda request, keys: None))
    client = Client()
    client.force_login(helpdesk)

    body = client.get(reverse("certs:keys")).content.decode()

    first = body.index('<section id="first">first: 1 key(s)</section>')
    assert first < body.index('<section id="second">second: 1 key(s)</section>')
    assert "extra/hidden.html" not in body


def test_stored_certificates_are_delivered_when_any_registered_delivery_is_connected(
    registered: None,
) -> None:
    hooks._DELIVERY.clear()
    assert hooks.delivery_connected() is False
    hooks.register_delivery("elsewhere", lambda: False)
    assert hooks.delivery_connected() is False
    hooks.register_delivery("intune", lambda: True)
    assert hooks.delivery_connected() is True
    hooks.register_delivery("intune", lambda: False)
    assert hooks.delivery_connected() is False

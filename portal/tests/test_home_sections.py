"""Home shows the sections the apps register (portal/home.py), in order, each with its own variables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from portal import audit, home
from portal.audit import Actor
from portal.home import HomeSection, register_home_section
from portal.models import User

TEMPLATES = {
    "tests/first.html": '<p data-testid="first">{{ figure }} of {{ nav_active }}</p>',
    "tests/second.html": '<p data-testid="second">{{ figure }}</p>',
    "tests/hidden.html": '<p data-testid="hidden">never</p>',
    "tests/after.html": '<p data-testid="after">[{{ figure }}]</p>',
}


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, HomeSection]:
    """An empty registry for the test; the apps' own sections are back afterwards."""
    sections: dict[str, HomeSection] = {}
    monkeypatch.setattr(home, "_HOME_SECTIONS", sections)
    return sections


@pytest.fixture
def test_templates(settings: Any) -> Iterator[None]:
    engine = settings.TEMPLATES[0]
    loaders = [
        ("django.template.loaders.locmem.Loader", TEMPLATES),
        "django.template.loaders.filesystem.Loader",
        "django.template.loaders.app_directories.Loader",
    ]
    settings.TEMPLATES = [{**engine, "APP_DIRS": False, "OPTIONS": {**engine["OPTIONS"], "loaders": loaders}}]
    yield


def _context(figure: object) -> Callable[[Any], dict[str, Any] | None]:
    return lambda request: None if figure is None else {"figure": figure}


def _signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_sections_come_in_order_and_a_section_without_context_is_left_out(
    registry: dict[str, HomeSection],
) -> None:
    register_home_section(HomeSection("tests/second.html", _context(2), order=20))
    register_home_section(HomeSection("tests/hidden.html", _context(None), order=5))
    register_home_section(HomeSection("tests/first.html", _context(1), order=10))

    shown = home.home_sections(object())  # type: ignore[arg-type]

    assert shown == [
        {"template": "tests/first.html", "context": {"figure": 1}},
        {"template": "tests/second.html", "context": {"figure": 2}},
    ]


def test_registering_a_template_again_replaces_its_section(registry: dict[str, HomeSection]) -> None:
    register_home_section(HomeSection("tests/first.html", _context(1), order=10))
    register_home_section(HomeSection("tests/first.html", _context(3), order=10))

    assert home.home_sections(object()) == [{"template": "tests/first.html", "context": {"figure": 3}}]  # type: ignore[arg-type]


def test_home_renders_each_section_with_its_own_variables_over_the_pages(
    registry: dict[str, HomeSection], test_templates: None, make_admin: Callable[..., User]
) -> None:
    register_home_section(HomeSection("tests/first.html", _context(1), order=10))
    register_home_section(HomeSection("tests/hidden.html", _context(None), order=15))
    register_home_section(HomeSection("tests/second.html", _context(2), order=20))

    page = _signed_in(make_admin("read_only_operator")).get(reverse("home")).content.decode()

    first, second = page.index('data-testid="first"'), page.index('data-testid="second"')
    assert first < second < page.index("Service health")
    assert '<p data-testid="first">1 of home</p>' in page and '<p data-testid="second">2</p>' in page
    assert 'data-testid="hidden"' not in page


def test_a_sections_variables_end_with_the_section(
    registry: dict[str, HomeSection], test_templates: None, make_admin: Callable[..., User]
) -> None:
    register_home_section(HomeSection("tests/first.html", _context(1), order=10))
    register_home_section(HomeSection("tests/after.html", lambda request: {}, order=20))

    page = _signed_in(make_admin("read_only_operator")).get(reverse("home")).content.decode()

    assert '<p data-testid="after">[]</p>' in page


def _counting() -> Callable[[Any], dict[str, Any]]:
    calls = [0]

    def context(request: Any) -> dict[str, Any]:
        calls[0] += 1
        return {"figure": calls[0]}

    return context


def test_a_section_is_rendered_once_until_something_changes_then_at_once_again(
    registry: dict[str, HomeSection], test_templates: None, make_admin: Callable[..., User]
) -> None:
    register_home_section(HomeSection("tests/second.html", _counting(), order=10))
    client = _signed_in(make_admin("read_only_operator"))
    assert '<p data-testid="second">1</p>' in client.get(reverse("home")).content.decode()
    assert '<p data-testid="second">1</p>' in client.get(reverse("home")).content.decode()
    with transaction.atomic():
        audit.record(
            Actor.system("test"), activity="Something", category="Tests", operation="Action", resources=[]
        )
    assert '<p data-testid="second">2</p>' in client.get(reverse("home")).content.decode()


def test_a_section_registered_as_not_kept_is_rendered_on_every_view(
    registry: dict[str, HomeSection], test_templates: None, make_admin: Callable[..., User]
) -> None:
    register_home_section(HomeSection("tests/second.html", _counting(), order=10, kept=False))
    client = _signed_in(make_admin("read_only_operator"))
    assert '<p data-testid="second">1</p>' in client.get(reverse("home")).content.decode()
    assert '<p data-testid="second">2</p>' in client.get(reverse("home")).content.decode()

"""Troubleshooting + support: the help desk finds one user and lands on everything known about them."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from directory.models import DirectoryUser
from portal.models import User

pytestmark = pytest.mark.django_db


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _user(upn: str, name: str) -> DirectoryUser:
    return DirectoryUser.objects.create(object_id=uuid.uuid4(), upn=upn, display_name=name, mail=upn)


def test_one_matching_user_opens_their_page(make_admin: Callable[..., User]) -> None:
    lidia = _user("lidia.holloway@contoso.example", "Lidia Holloway")
    _user("ben.walters@contoso.example", "Ben Walters")
    response = _client(make_admin("help_desk_operator")).get("/troubleshooting/", {"q": "holloway"})
    assert response.status_code == 302
    assert response["Location"] == reverse("directory:user", args=[lidia.object_id])


def test_several_matches_are_listed_to_pick_from(make_admin: Callable[..., User]) -> None:
    for i in range(3):
        _user(f"adele.vance{i}@contoso.example", f"Adele Vance {i}")
    page = _client(make_admin("help_desk_operator")).get("/troubleshooting/", {"q": "adele"})
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("adele.vance") >= 3 and "No user matches" not in html


def test_the_page_needs_directory_read(make_admin: Callable[..., User]) -> None:
    assert _client(make_admin(None)).get("/troubleshooting/").status_code == 403
    nav = _client(make_admin("help_desk_operator")).get("/troubleshooting/").content.decode()
    assert 'href="/troubleshooting/"' in nav

"""The directory lists are rendered once and kept until the directory changes: a change shows on the
next view, and the lists count only as far as they show."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from directory import imports
from directory.models import DirectoryUser, Group
from portal.audit import Actor
from portal.lib import paging
from portal.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_of(settings: Any) -> Callable[[User], Client]:
    settings.PORTAL_ENFORCE_MFA = False

    def signed_in(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return signed_in


def _csv(*upns: str) -> io.BytesIO:
    return io.BytesIO(
        ("userPrincipalName,displayName\n" + "".join(f"{u},{u.split('@')[0]}\n" for u in upns)).encode()
    )


def test_a_user_imported_shows_on_the_users_list_at_once(
    intune_admin: User, client_of: Callable[[User], Client]
) -> None:
    client = client_of(intune_admin)
    imports.import_users_csv(Actor.for_user(intune_admin), _csv("adele@contoso.com"))
    assert "adele@contoso.com" in client.get("/users/").content.decode()
    imports.import_users_csv(Actor.for_user(intune_admin), _csv("bianca@contoso.com"))
    page = client.get("/users/").content.decode()
    assert "adele@contoso.com" in page and "bianca@contoso.com" in page


def test_each_search_is_its_own_list(intune_admin: User, client_of: Callable[[User], Client]) -> None:
    imports.import_users_csv(Actor.for_user(intune_admin), _csv("adele@contoso.com", "bianca@contoso.com"))
    client = client_of(intune_admin)
    assert "bianca@contoso.com" in client.get("/users/").content.decode()
    found = client.get("/users/?q=adele").content.decode()
    assert "adele@contoso.com" in found and "bianca@contoso.com" not in found
    assert 'value="adele"' in found  # the search box shows this search, not the kept one of another


def test_a_long_users_list_counts_only_as_far_as_it_shows(
    intune_admin: User, client_of: Callable[[User], Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "COUNT_AT_LEAST", 60)
    DirectoryUser.objects.bulk_create(
        [DirectoryUser(upn=f"user{n:03d}@contoso.com", display_name=f"User {n:03d}") for n in range(130)]
    )
    page = client_of(intune_admin).get("/users/").content.decode()
    assert "more than 60 users" in page and "Next" in page


def test_groups_show_their_member_counts(intune_admin: User, client_of: Callable[[User], Client]) -> None:
    imports.import_users_csv(Actor.for_user(intune_admin), _csv("adele@contoso.com", "bianca@contoso.com"))
    group = Group.objects.create(display_name="Sales", kind=Group.Kind.USER)
    group.users.set(DirectoryUser.objects.all())
    Group.objects.create(display_name="Empty", kind=Group.Kind.USER)
    page = client_of(intune_admin).get("/groups/?sort=-members").content.decode()
    assert page.index("Sales") < page.index("Empty")
    assert '<td class="num">2</td>' in page and '<td class="num">0</td>' in page

"""The directory's section of Home: live users, groups and devices, for readers of the directory only."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from directory.models import DirectoryUser, Group
from portal.models import User

pytestmark = pytest.mark.django_db


def _home(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.get(reverse("home")).content.decode()


def test_a_directory_reader_sees_the_live_directorys_size_on_home(make_admin: Callable[..., User]) -> None:
    for name in ("Ana", "Ben"):
        DirectoryUser.objects.create(object_id=uuid.uuid4(), upn=f"{name}@contoso.example", display_name=name)
    DirectoryUser.objects.create(
        object_id=uuid.uuid4(), upn="gone@contoso.example", display_name="Gone", removed_at=timezone.now()
    )
    Group.objects.create(object_id=uuid.uuid4(), display_name="All Company")

    page = _home(make_admin("help_desk_operator"))

    section = page[page.index("<h2>Tenant directory</h2>") :]
    assert f'href="{reverse("directory:users")}"><div class="figure">2</div>' in section
    assert f'href="{reverse("directory:groups")}"><div class="figure">1</div>' in section
    assert f'href="{reverse("directory:devices")}"><div class="figure">0</div>' in section


def test_an_admin_without_directory_access_does_not_see_it(make_admin: Callable[..., User]) -> None:
    assert "Tenant directory" not in _home(make_admin(None))

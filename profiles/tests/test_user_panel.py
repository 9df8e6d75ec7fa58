from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from directory.models import DirectoryUser
from portal.models import User

pytestmark = pytest.mark.django_db


def test_the_user_page_shows_the_profiles_section_to_those_who_may_read_profiles(
    client: Client, make_admin: Callable[..., User]
) -> None:
    person = DirectoryUser.objects.create(upn="nestor@contoso.example", display_name="Nestor Wilke")
    client.force_login(make_admin("help_desk_operator"))

    page = client.get(f"/users/{person.object_id}/").content.decode()

    assert 'data-testid="user-profiles"' in page

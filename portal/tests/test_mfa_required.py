from __future__ import annotations

from collections.abc import Callable

import pytest
from allauth.mfa.models import Authenticator
from django.test import Client
from django.urls import reverse

from portal.models import User

pytestmark = pytest.mark.django_db


def test_an_admin_whose_role_requires_mfa_is_sent_to_set_it_up_until_an_authenticator_exists(
    make_admin: Callable[..., User],
) -> None:
    admin = make_admin("intune_administrator")
    client = Client()
    client.force_login(admin)
    first = client.get(reverse("home"))
    assert first.status_code == 302
    assert first["Location"].startswith(reverse("mfa_activate_totp"))
    # A recovery-codes authenticator is not a second factor to sign in with.
    Authenticator.objects.create(user=admin, type=Authenticator.Type.RECOVERY_CODES, data={})
    assert client.get(reverse("home")).status_code == 302
    Authenticator.objects.create(user=admin, type=Authenticator.Type.TOTP, data={"secret": "x"})
    assert client.get(reverse("home")).status_code == 200

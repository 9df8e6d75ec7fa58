"""The help desk's user page runs the same queries whatever the number of profiles, certificates and
devices a user's delivery states name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from delivery.tests import builders as b
from directory.models import DirectoryUser, Platform
from portal import summaries
from portal.models import ScopeTag, User
from profiles.models import DeliveryStatus
from profiles.tests import factories as f

pytestmark = pytest.mark.django_db

STATES = [DeliveryStatus.SUCCEEDED, DeliveryStatus.ERROR, DeliveryStatus.PENDING, DeliveryStatus.REMOVED]


class Person:
    def __init__(self, tag: ScopeTag) -> None:
        self.tag = tag
        self.user = f.user("alice@contoso.example", f.group("Staff"))
        self.devices: list[Any] = []
        self.certificates: list[Any] = []
        self.profiles: list[Any] = []

    def grow(self, *, profiles: int, devices: int, certificates: int) -> None:
        n = len(self.profiles)
        self.profiles += [b.profile(f"Profile {n + i:02d}", self.tag) for i in range(profiles)]
        platforms = [Platform.WINDOWS, Platform.IOS, Platform.ANDROID_WORK_PROFILE]
        k = len(self.devices)
        self.devices += [
            f.device(f"DEVICE-{k + i:02d}", self.user, platform=platforms[(k + i) % 3])
            for i in range(devices)
        ]
        self.certificates += [b.certificate(self.user) for _ in range(certificates)]
        for i, (profile, device, cert) in enumerate(
            (p, d, c) for p in self.profiles for d in self.devices for c in self.certificates
        ):
            if not profile.delivery_states.filter(device=device, certificate=cert).exists():
                b.state(
                    profile,
                    device,
                    cert,
                    STATES[i % len(STATES)],
                    code="pfx_open_failed" if i % 4 == 1 else "",
                )


def _queries(client: Client, user: DirectoryUser) -> tuple[int, str]:
    summaries.forget()  # rendered, not a kept piece
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("directory:user", args=[user.object_id]))
    assert response.status_code == 200
    return len(captured), response.content.decode()


@pytest.mark.parametrize("role", ["help_desk_operator", "intune_administrator"])
def test_the_user_page_runs_as_many_queries_for_many_profiles_certificates_and_devices_as_for_one(
    role: str, make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], settings: Any
) -> None:
    settings.PORTAL_ENFORCE_MFA = False
    paris = make_tag("Paris")
    client = Client()
    client.force_login(make_admin(role, tags=[paris]))
    person = Person(paris)
    person.grow(profiles=1, devices=1, certificates=1)
    _queries(client, person.user)  # per-process caches (content types, sessions) out of the count
    small, page = _queries(client, person.user)
    assert "DEVICE-00" in page

    person.grow(profiles=5, devices=4, certificates=3)
    _queries(client, person.user)  # the profiles' targeting is read again once after they change
    large, page = _queries(client, person.user)

    assert page.count('data-testid="delivery-device"') == 5
    assert "Resend to DEVICE-04" in page and person.certificates[-1].thumbprint[:16] in page
    assert large == small

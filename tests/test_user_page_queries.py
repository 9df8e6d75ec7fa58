"""The directory user page (what the help desk lives on) runs as many queries for a user with 30
certificates, devices and groups as for one with 3: every panel reads its rows in one go."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from certs.models import Certificate, EncryptionKey, ImportBatch, Padding
from certs.tests.importing import add_key
from delivery.models import DeliveryState
from directory.models import DirectoryUser, Group, GroupUserMember, Platform
from portal import summaries
from portal.models import ScopeTag, User
from profiles.models import DeliveryStatus
from profiles.tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def helpdesk_client(make_admin: Callable[..., User], client: Client, settings: Any) -> Client:
    settings.PORTAL_ENFORCE_MFA = False
    client.force_login(make_admin("help_desk_operator"))
    return client


class Person:
    """A user with certificates (from an import, some expired), devices, groups and profile reports."""

    def __init__(self) -> None:
        self.key: EncryptionKey = add_key()
        self.user = f.user("alice@contoso.example")
        self.staff = f.group("Staff")
        self.pcs = f.group("PCs", Group.Kind.DEVICE)
        GroupUserMember.objects.create(group=self.staff, user=self.user)
        self.encryption = f.profile("S/MIME encryption", include=[self.staff, self.pcs])
        self.phones = f.profile("Phones", platform=Platform.IOS, include=[self.staff])
        self.batch = ImportBatch.objects.create(kind=ImportBatch.Kind.BULK, encryption_key=self.key, total=0)
        self.count = 0

    def add(self, n: int) -> None:
        now = timezone.now()
        for i in range(self.count, self.count + n):
            group = f.group(f"Team {i}")
            GroupUserMember.objects.create(group=group, user=self.user)
            platform = Platform.WINDOWS if i % 2 else Platform.IOS
            device = f.device(f"DEVICE-{i:02d}", self.user, self.pcs, platform=platform)
            DeliveryState.objects.create(
                profile=self.encryption, device=device, user=self.user, status=DeliveryStatus.SUCCEEDED
            )
            cert = Certificate.objects.create(
                user=self.user,
                upn=self.user.upn,
                thumbprint=f"{i:040X}",
                subject=f"CN={self.user.upn}",
                issuer="CN=Contoso CA",
                serial=f"{i:x}",
                not_before=now - timedelta(days=400),
                not_after=now + timedelta(days=i - n // 2),
                key_type="rsa",
                key_size=2048,
                encryption_key=self.key,
                padding=Padding.OAEP_SHA512,
                pfx_blob=b"\x30\x82",
                encrypted_password=b"\x00",
                batch=self.batch if i % 2 else None,
            )
            cert.scope_tags.set([ScopeTag.default()])
        self.count += n


def queries(client: Client, user: DirectoryUser) -> tuple[int, str]:
    summaries.forget()  # rendered, not a kept piece
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("directory:user", args=[user.object_id]))
    assert response.status_code == 200
    return len(captured), response.content.decode()


def test_the_user_page_runs_as_many_queries_with_30_certificates_devices_and_groups_as_with_3(
    helpdesk_client: Client,
) -> None:
    person = Person()
    person.add(3)
    queries(helpdesk_client, person.user)  # per-process caches (content types, sessions) out of the count
    with_three, page = queries(helpdesk_client, person.user)
    assert "DEVICE-02" in page and "Team 2" in page
    person.add(27)
    with_thirty, page = queries(helpdesk_client, person.user)

    assert "DEVICE-29" in page and "Team 29" in page and f"{29:040X}"[:16] in page
    assert "Remove expired certificates" not in page  # a help desk operator deletes nothing
    assert with_thirty == with_three

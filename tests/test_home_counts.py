"""Home's whole-table counts: computed once and shared by admins who see the same certificates,
a change shows within PORTAL_SUMMARY_MIN_AGE seconds, and the page's queries do not grow with the data."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from certs import imports, lifecycle
from certs.models import Certificate, EncryptionKey, GraphState, Padding
from certs.tests.importing import add_key, directory_user, pfx_for
from directory.models import Device, DirectoryUser, Platform
from portal import summaries
from portal.audit import Actor
from portal.lib import fragments
from portal.models import Role, RoleAssignment, ScopeTag, User

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_mfa_step(settings: Any) -> None:
    settings.PORTAL_ENFORCE_MFA = False
    settings.PORTAL_SUMMARY_MIN_AGE = 10
    settings.PORTAL_SUMMARY_MAX_AGE = 60


@pytest.fixture
def key(db: None) -> EncryptionKey:
    return add_key()


class Clock:
    """Moves the time Home's kept counts are judged by (nothing sleeps)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0.0
        real = summaries._now
        monkeypatch.setattr(summaries, "_now", lambda: real() + self.offset)
        # The rendered sections are kept on the same time.
        monkeypatch.setattr(fragments, "_now", lambda: real() + self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def _signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _certificate_reader(make_admin: Callable[..., User], tag: ScopeTag) -> User:
    """Reads certificates over ``tag`` only: without the directory, no certificate is read through its user."""
    role, _ = Role.objects.get_or_create(
        name="Certificate reader", defaults={"permissions": ["certificates.read"]}
    )
    user = make_admin(None, email=f"reader.{tag.name.lower()}@contoso.example")
    assignment = RoleAssignment.objects.create(role=role, name=f"Certificate reader ({tag.name})")
    assignment.members.add(user)
    assignment.scope_tags.set([tag])
    return user


def _stored(
    key: EncryptionKey, upn: str, *, days: int, tag: ScopeTag | None = None, n: int = 0
) -> Certificate:
    """A stored certificate written straight to the table, as a bulk load would (no audit event)."""
    user = directory_user(upn)
    now = timezone.now()
    cert = Certificate.objects.create(
        user=user,
        upn=upn,
        thumbprint=f"{user.pk:020X}{n:020X}",
        subject=f"CN={upn}",
        issuer="CN=Contoso CA",
        serial=f"{user.pk:x}{n:02x}",
        not_before=now - timedelta(days=30),
        not_after=now + timedelta(days=days),
        key_type="rsa",
        key_size=2048,
        encryption_key=key,
        padding=Padding.OAEP_SHA512,
        pfx_blob=b"\x30\x82",
        encrypted_password=b"\x00",
    )
    cert.scope_tags.set([tag or ScopeTag.default()])
    return cert


def _imported(key: EncryptionKey, upn: str, *, days: int) -> Certificate:
    """A certificate imported through the import service, which writes its audit event."""
    directory_user(upn)
    item = lifecycle.certificate_import(
        Actor.system("Import"),
        entry=imports.Entry("a.pfx", pfx_for(upn, "pw", days=days), "pw", upn, "smimeEncryption"),
        key=key,
        tags=[ScopeTag.default()],
    )
    assert item.certificate is not None
    return item.certificate


def _home(client: Client) -> dict[str, Any]:
    """The figures Home shows (read from the page: its sections may be kept, not rendered again)."""
    response = client.get(reverse("home"))
    assert response.status_code == 200
    page = response.content.decode()

    def figure(pattern: str) -> int | None:
        found = re.search(r'<div class="figure">(\d+)</div><div class="label">' + pattern, page)
        return int(found.group(1)) if found else None

    return {
        "within_30_days": figure("Expiring in 30 days"),
        "failed_uploads": figure("Failed uploads? to Intune"),
        "users": figure("Users<"),
    }


def test_an_import_shows_on_home_at_once_when_nothing_was_counted_in_the_last_ten_seconds(
    intune_admin: User, key: EncryptionKey, clock: Clock
) -> None:
    client = _signed_in(intune_admin)
    assert _home(client)["within_30_days"] == 0
    clock.advance(10)

    _imported(key, "alice@contoso.example", days=20)

    assert _home(client)["within_30_days"] == 1


def test_an_import_right_after_home_was_counted_shows_ten_seconds_later(
    intune_admin: User, key: EncryptionKey, clock: Clock
) -> None:
    client = _signed_in(intune_admin)
    assert _home(client)["within_30_days"] == 0

    _imported(key, "alice@contoso.example", days=20)
    assert _home(client)["within_30_days"] == 0  # counted less than ten seconds ago
    clock.advance(10)

    assert _home(client)["within_30_days"] == 1


def test_a_change_that_wrote_no_audit_event_shows_on_home_within_a_minute(
    intune_admin: User, key: EncryptionKey, clock: Clock
) -> None:
    client = _signed_in(intune_admin)
    _stored(key, "alice@contoso.example", days=20)
    assert _home(client) == {"within_30_days": 1, "failed_uploads": 0, "users": 1}

    _stored(key, "bob@contoso.example", days=20)
    Certificate.objects.update(graph_state=GraphState.FAILED)
    clock.advance(59)
    assert _home(client) == {"within_30_days": 1, "failed_uploads": 0, "users": 1}
    clock.advance(1)

    assert _home(client) == {"within_30_days": 2, "failed_uploads": 2, "users": 2}


def test_admins_reading_different_scope_tags_never_see_each_others_counts(
    intune_admin: User,
    key: EncryptionKey,
    make_admin: Callable[..., User],
    make_tag: Callable[[str], ScopeTag],
) -> None:
    europe, asia = make_tag("Europe"), make_tag("Asia")
    for n, upn in enumerate(["alice@contoso.example", "anna@contoso.example"]):
        _stored(key, upn, days=20, tag=europe, n=n)
    _stored(key, "bob@contoso.example", days=20, tag=asia)
    Certificate.objects.filter(upn="anna@contoso.example").update(graph_state=GraphState.FAILED)
    europe_reader = _signed_in(_certificate_reader(make_admin, europe))
    asia_reader = _signed_in(_certificate_reader(make_admin, asia))
    everything = _signed_in(intune_admin)

    # In turn, all within the ten seconds a count is kept for.
    assert _home(europe_reader) == {"within_30_days": 2, "failed_uploads": 1, "users": None}
    assert _home(asia_reader) == {"within_30_days": 1, "failed_uploads": 0, "users": None}
    assert _home(everything) == {"within_30_days": 3, "failed_uploads": 1, "users": 3}
    assert _home(europe_reader) == {"within_30_days": 2, "failed_uploads": 1, "users": None}


def test_a_help_desk_operator_over_one_tag_counts_every_certificate_as_they_read_them_through_users(
    key: EncryptionKey, make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag]
) -> None:
    europe = make_tag("Europe")
    _stored(key, "alice@contoso.example", days=20, tag=europe)
    _stored(key, "bob@contoso.example", days=20)
    reader = _signed_in(_certificate_reader(make_admin, europe))
    helpdesk = _signed_in(make_admin("help_desk_operator", tags=[europe]))

    assert _home(reader)["within_30_days"] == 1
    assert _home(helpdesk)["within_30_days"] == 2


def _queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("home")).status_code == 200
    return len(captured)


def _first_and_next(client: Client) -> tuple[int, int]:
    """Queries of a view that counts (nothing kept), and of the next one (counts kept)."""
    summaries.forget()
    return _queries(client), _queries(client)


def test_home_runs_as_many_queries_with_30_certificates_users_and_devices_as_with_3(
    intune_admin: User, key: EncryptionKey
) -> None:
    client = _signed_in(intune_admin)

    def add(count: int) -> None:
        start = Certificate.objects.count()
        for n in range(start, start + count):
            cert = _stored(key, f"user{n}@contoso.example", days=n, n=n)
            Device.objects.create(name=f"PC-{n}", platform=Platform.WINDOWS, primary_user=cert.user)

    add(3)
    _queries(client)  # per-process caches (content types, sessions) out of the count
    with_three = _first_and_next(client)
    add(27)
    with_thirty = _first_and_next(client)

    assert DirectoryUser.objects.count() == 30
    assert with_thirty == with_three
    assert with_three[1] < with_three[0]


def test_a_change_by_an_administrator_shows_in_recent_changes_at_once(
    intune_admin: User, key: EncryptionKey
) -> None:
    client = _signed_in(intune_admin)
    assert "Delete certificate" not in client.get(reverse("home")).content.decode()
    cert = _stored(key, "alice@contoso.example", days=20)
    lifecycle.certificate_delete(Actor.for_user(intune_admin), certificate=cert)
    assert "Delete certificate" in client.get(reverse("home")).content.decode()


def test_recent_changes_kept_for_an_admin_who_reads_everything_are_not_shown_to_a_scoped_one(
    intune_admin: User,
    key: EncryptionKey,
    make_admin: Callable[..., User],
    make_tag: Callable[[str], ScopeTag],
) -> None:
    europe, asia = make_tag("Europe"), make_tag("Asia")
    cert = _stored(key, "alice@contoso.example", days=20, tag=europe)
    lifecycle.certificate_delete(Actor.for_user(intune_admin), certificate=cert)
    assert "alice@contoso.example" in _signed_in(intune_admin).get(reverse("home")).content.decode()
    reader = _certificate_reader(make_admin, asia)
    role = Role.objects.get(name="Certificate reader")
    role.permissions = ["certificates.read", "audit.read"]
    role.save()
    page = _signed_in(reader).get(reverse("home")).content.decode()
    assert "Recent changes by administrators" in page and "alice@contoso.example" not in page

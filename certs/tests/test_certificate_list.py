"""The certificate list pages through a large table: it counts only as far as it shows, lists every
certificate once and in order, and runs as many queries however many certificates there are."""

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

from certs.forms import CertificateFilterForm
from certs.models import Certificate, EncryptionKey, Padding, Purpose
from certs.tests.importing import add_key
from certs.views import certificates as views
from directory.models import DirectoryUser
from portal.models import ScopeTag, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(make_admin: Callable[..., User], client: Client, settings: Any) -> Client:
    settings.PORTAL_ENFORCE_MFA = False
    client.force_login(make_admin("help_desk_operator"))
    return client


@pytest.fixture
def key(db: None) -> EncryptionKey:
    return add_key()


def add_certificates(key: EncryptionKey, count: int) -> None:
    """``count`` more stored certificates, three per user, in an order unlike any sort's."""
    start = Certificate.objects.count()
    now = timezone.now()
    upns = [f"user{n // 3:04d}@contoso.example" for n in range(start, start + count)]
    known = set(DirectoryUser.objects.filter(upn__in=upns).values_list("upn", flat=True))
    DirectoryUser.objects.bulk_create(
        [
            DirectoryUser(upn=upn, display_name=upn.split("@")[0])
            for upn in dict.fromkeys(upns)
            if upn not in known
        ]
    )
    users = dict(DirectoryUser.objects.filter(upn__in=upns).values_list("upn", "pk"))
    rows = []
    for n, upn in enumerate(upns, start=start):
        scrambled = (n * 7919) % 1000
        rows.append(
            Certificate(
                user_id=users[upn],
                upn=upn,
                thumbprint=f"{n:040X}",
                purpose=[Purpose.SMIME_ENCRYPTION, Purpose.SMIME_SIGNING][n % 2],
                subject=f"CN={upn}",
                issuer="CN=Contoso CA",
                serial=f"{n:x}",
                not_before=now - timedelta(days=30),
                not_after=now + timedelta(days=scrambled, minutes=n),
                key_type="rsa",
                key_size=2048,
                encryption_key=key,
                padding=Padding.OAEP_SHA512,
                pfx_blob=b"\x30\x82",
                encrypted_password=b"\x00",
                created_at=now - timedelta(minutes=scrambled),
            )
        )
    created = Certificate.objects.bulk_create(rows)
    through = Certificate.scope_tags.through
    default = ScopeTag.default()
    through.objects.bulk_create([through(certificate_id=c.pk, scopetag_id=default.pk) for c in created])


def shown(client: Client, **query: Any) -> tuple[list[str], str]:
    """The thumbprints a list page shows, in order, and its pagination line."""
    response = client.get(reverse("certs:list"), query)
    assert response.status_code == 200
    html = response.content.decode()
    found = re.search(r'<nav class="pagination"[^>]*>(.*?)</nav>', html, re.S)
    line = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip() if found else ""
    return re.findall(r'data-thumbprint="([0-9A-F]+)"', html), line


def test_a_short_list_is_counted_in_full(admin_client: Client, key: EncryptionKey) -> None:
    add_certificates(key, 3)

    rows, line = shown(admin_client)

    assert len(rows) == 3
    assert "Page 1 of 1 · 3 certificates" in line


def test_a_list_longer_than_it_counts_says_more_than_and_still_pages_on_to_its_end(
    admin_client: Client, key: EncryptionKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "COUNT_AT_LEAST", 100)
    add_certificates(key, 160)

    first, line = shown(admin_client)
    assert len(first) == 50
    assert "Page 1 · more than 100 certificates" in line and "Next" in line
    third, line = shown(admin_client, page=3)
    assert len(third) == 50 and not set(third) & set(first)
    assert "Page 3 · more than 150 certificates" in line and "Next" in line
    last, line = shown(admin_client, page=4)
    assert len(last) == 10
    assert "Page 4 of 4 · 160 certificates" in line and "Next" not in line


def test_a_page_past_the_end_shows_the_last_page(admin_client: Client, key: EncryptionKey) -> None:
    add_certificates(key, 60)

    rows, line = shown(admin_client, page=99)

    assert len(rows) == 10
    assert "Page 2 of 2 · 60 certificates" in line
    assert shown(admin_client, page="abc") == shown(admin_client, page=1)


@pytest.mark.parametrize("sort", ["expires", "-expires", "upn", "-upn", "purpose", "-imported"])
def test_the_pages_list_every_certificate_once_in_the_chosen_order(
    admin_client: Client, key: EncryptionKey, monkeypatch: pytest.MonkeyPatch, sort: str
) -> None:
    monkeypatch.setattr(views, "COUNT_AT_LEAST", 50)
    add_certificates(key, 130)
    fields = CertificateFilterForm.SORTS[sort.lstrip("-")]
    order = [f"-{f.lstrip('-')}" if sort.startswith("-") else f for f in fields]
    expected = list(Certificate.objects.order_by(*order, "pk").values_list("thumbprint", flat=True))

    pages = [shown(admin_client, sort=sort, page=n)[0] for n in (1, 2, 3)]

    assert [t for page in pages for t in page] == expected


def queries(client: Client, **query: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("certs:list"), query).status_code == 200
    return len(captured)


@pytest.mark.parametrize("query", [{}, {"q": "contoso"}, {"sort": "-upn", "page": "2"}, {"state": "valid"}])
def test_the_certificate_list_runs_as_many_queries_with_many_certificates_as_with_few(
    admin_client: Client, key: EncryptionKey, monkeypatch: pytest.MonkeyPatch, query: dict[str, str]
) -> None:
    monkeypatch.setattr(views, "COUNT_AT_LEAST", 100)
    add_certificates(key, 3)
    queries(admin_client, **query)  # per-process caches (content types, sessions) out of the count
    with_three = queries(admin_client, **query)
    add_certificates(key, 27)
    with_thirty = queries(admin_client, **query)
    add_certificates(key, 270)
    with_three_hundred = queries(admin_client, **query)
    add_certificates(key, 300)
    with_six_hundred = queries(admin_client, **query)

    # A page that is not full needs no count; past that the count is one query, whatever the size.
    assert with_three == with_thirty
    assert with_three_hundred == with_six_hundred <= with_three + 1

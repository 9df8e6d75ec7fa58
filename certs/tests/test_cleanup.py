"""Certificates > Clean up expired: remove expired certificates tenant-wide, by rule, with a preview."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from certs import imports, lifecycle
from certs.models import Certificate, EncryptionKey, Purpose
from certs.tests.importing import add_key, directory_user, pfx_for
from portal.audit import Actor
from portal.models import AuditEvent, ScopeTag, User

pytestmark = pytest.mark.django_db
ALICE, BOB = "alice@contoso.example", "bob@contoso.example"


@pytest.fixture(autouse=True)
def no_mfa_step(settings: Any) -> None:
    settings.PORTAL_ENFORCE_MFA = False


def _certificate(upn: str, purpose: str, *, expired_days_ago: int | None, kind: str) -> Certificate:
    directory_user(upn)
    key = EncryptionKey.objects.first() or add_key()
    item = lifecycle.certificate_import(
        Actor.system(),
        entry=imports.Entry(f"{kind}.pfx", pfx_for(upn, "pw", kind=kind), "pw", upn, purpose),
        key=key,
        tags=[ScopeTag.default()],
    )
    assert item.certificate is not None, item.problem_code
    if expired_days_ago is not None:
        ended = timezone.now() - dt.timedelta(days=expired_days_ago)
        Certificate.objects.filter(pk=item.certificate.pk).update(not_after=ended)
    return item.certificate


@pytest.fixture
def tenant() -> dict[str, Certificate]:
    return {
        "alice_old_signing": _certificate(ALICE, Purpose.SMIME_SIGNING, expired_days_ago=90, kind="a1"),
        "alice_signing": _certificate(ALICE, Purpose.SMIME_SIGNING, expired_days_ago=None, kind="a2"),
        "alice_old_encryption": _certificate(ALICE, Purpose.SMIME_ENCRYPTION, expired_days_ago=90, kind="a3"),
        "alice_encryption": _certificate(ALICE, Purpose.SMIME_ENCRYPTION, expired_days_ago=None, kind="a4"),
        # Bob has no successor yet: his expired signing certificate is not superseded.
        "bob_old_signing": _certificate(BOB, Purpose.SMIME_SIGNING, expired_days_ago=90, kind="b1"),
        "alice_recent_signing": _certificate(ALICE, Purpose.SMIME_SIGNING, expired_days_ago=3, kind="a5"),
    }


def test_the_default_rule_previews_superseded_signing_certificates_expired_a_month_ago(
    client: Client, intune_admin: User, tenant: dict[str, Certificate]
) -> None:
    client.force_login(intune_admin)
    page = client.get(reverse("certs:cleanup")).content.decode()
    assert 'data-testid="count">1<' in page
    assert tenant["alice_old_signing"].thumbprint[:11] in page
    assert tenant["bob_old_signing"].thumbprint[:11] not in page


def test_removing_by_rule_deletes_only_what_was_previewed_and_audits_it(
    client: Client, intune_admin: User, tenant: dict[str, Certificate]
) -> None:
    client.force_login(intune_admin)
    rule = {"purpose": "", "expired_days": "30", "superseded_only": "on"}
    assert 'data-testid="count">2<' in client.get(reverse("certs:cleanup"), rule).content.decode()
    response = client.post(reverse("certs:cleanup"), {**rule, "expected": "2", "confirm": "on"}, follow=True)
    assert "2 expired certificates removed" in response.content.decode()
    remaining = set(Certificate.objects.values_list("pk", flat=True))
    gone = {tenant["alice_old_signing"].pk, tenant["alice_old_encryption"].pk}
    assert remaining == {c.pk for c in tenant.values()} - gone
    event = AuditEvent.objects.get(activity="Remove expired certificates")
    assert len(event.resources) == 2


def test_nothing_is_removed_without_the_confirmation_or_when_the_list_changed(
    client: Client, intune_admin: User, tenant: dict[str, Certificate]
) -> None:
    client.force_login(intune_admin)
    rule = {"purpose": "", "expired_days": "0", "superseded_only": ""}
    unconfirmed = client.post(reverse("certs:cleanup"), {**rule, "expected": "4"})
    assert unconfirmed.status_code == 400 and "Tick the confirmation." in unconfirmed.content.decode()
    stale = client.post(reverse("certs:cleanup"), {**rule, "expected": "3", "confirm": "on"})
    assert stale.status_code == 400 and "The list changed" in stale.content.decode()
    assert Certificate.objects.count() == len(tenant)


def test_the_help_desk_cannot_clean_up(
    client: Client, helpdesk: User, tenant: dict[str, Certificate]
) -> None:
    client.force_login(helpdesk)
    assert client.get(reverse("certs:cleanup")).status_code == 403
    assert "Clean up expired" not in client.get(reverse("certs:list")).content.decode()


def test_htmx_gets_only_the_preview_so_paging_replaces_it_in_place(
    client: Client, intune_admin: User, tenant: dict[str, Certificate]
) -> None:
    client.force_login(intune_admin)
    body = client.get(
        reverse("certs:cleanup"), {"page": "1"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert body.lstrip().startswith('<section class="card" id="results"') and "<html" not in body

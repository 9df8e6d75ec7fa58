"""Connector pages through the test client: success paths, 403 for read-only, 404 for outsiders, 405."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from connectors import enrolment
from connectors.models import Connector, EnrollmentToken
from portal.lib.refusal import Refused
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def connector(token_for) -> Connector:
    return enrolment.connector_enroll(
        token=token_for("Srv1"), host_name="srv1", version="1.2.0", features=[]
    )[0]


def test_the_list_shows_connectors_with_their_status(intune_admin, connector):
    response = _client(intune_admin).get(reverse("connectors:list"))
    assert response.status_code == 200
    assert b"Srv1" in response.content and b"Unknown" in response.content and b"srv1" in response.content


def test_adding_shows_the_token_once_and_stores_only_its_hash(intune_admin):
    response = _client(intune_admin).post(reverse("connectors:add"), {"name": "Paris", "hours": 2})
    secret = response.context["secret"]
    assert secret.startswith("pfxe_") and secret.encode() in response.content
    assert response["Cache-Control"] == "no-store"
    token = EnrollmentToken.objects.get()
    assert secret not in str(EnrollmentToken.objects.values().get()) and token.name == "Paris"
    assert secret.encode() not in _client(intune_admin).get(reverse("connectors:list")).content


def test_an_unused_token_can_be_cancelled_and_then_enrolls_nothing(intune_admin, helpdesk):
    secret = (
        _client(intune_admin).post(reverse("connectors:add"), {"name": "Paris", "hours": 2}).context["secret"]
    )
    token = EnrollmentToken.objects.get()
    assert _client(helpdesk).post(reverse("connectors:token_cancel", args=[token.code])).status_code == 403
    page = _client(intune_admin).get(reverse("connectors:list")).content.decode()
    assert reverse("connectors:token_cancel", args=[token.code]) in page
    response = _client(intune_admin).post(reverse("connectors:token_cancel", args=[token.code]), follow=True)
    assert "cancelled: it can no longer enroll a connector" in response.content.decode()
    assert not EnrollmentToken.objects.exists()
    assert AuditEvent.objects.filter(activity="Cancel connector enrollment token").count() == 1
    with pytest.raises(Refused):
        enrolment.connector_enroll(token=secret, host_name="srv", version="1.0", features=[])


def test_a_used_token_cannot_be_cancelled(intune_admin, connector):
    used = EnrollmentToken.objects.get(connector=connector)
    assert _client(intune_admin).post(reverse("connectors:token_cancel", args=[used.code])).status_code == 404


def test_the_detail_page_shows_timeline_events_and_check_ins(intune_admin, connector):
    response = _client(intune_admin).get(reverse("connectors:detail", args=[connector.code]))
    assert response.status_code == 200 and b"Event log" in response.content and b">1<" in response.content


def test_rename_disable_and_revoke_are_audited(intune_admin, connector):
    client = _client(intune_admin)
    client.post(reverse("connectors:rename", args=[connector.code]), {"name": "Paris-1"})
    client.post(reverse("connectors:disable", args=[connector.code]))
    client.post(reverse("connectors:revoke", args=[connector.code]))
    connector.refresh_from_db()
    assert connector.name == "Paris-1" and connector.state == Connector.State.REVOKED
    activities = set(AuditEvent.objects.values_list("activity", flat=True))
    assert {"Rename connector", "Disable connector", "Revoke connector"} <= activities


def test_a_revoked_connector_is_not_enabled_and_the_page_says_why_with_the_code(intune_admin, connector):
    client = _client(intune_admin)
    client.post(reverse("connectors:revoke", args=[connector.code]))
    response = client.post(reverse("connectors:enable", args=[connector.code]), follow=True)
    assert (
        "A revoked connector cannot be disabled or enabled. (code connector_revoked)"
        in response.content.decode()
    )
    connector.refresh_from_db()
    assert connector.state == Connector.State.REVOKED
    assert not AuditEvent.objects.filter(activity="Enable connector").exists()


def test_delete_asks_first_then_removes(intune_admin, connector):
    client = _client(intune_admin)
    assert client.get(reverse("connectors:delete", args=[connector.code])).status_code == 200
    client.post(reverse("connectors:delete", args=[connector.code]))
    assert not Connector.objects.exists()


def test_a_help_desk_operator_reads_but_cannot_change(helpdesk, connector):
    client = _client(helpdesk)
    assert client.get(reverse("connectors:list")).status_code == 200
    assert client.get(reverse("certs:keys")).status_code == 200
    assert client.post(reverse("connectors:revoke", args=[connector.code])).status_code == 403
    assert client.post(reverse("connectors:add"), {"name": "x", "hours": 1}).status_code == 403


def test_an_admin_outside_the_connectors_tag_gets_404(make_admin, make_tag, connector):
    outsider = make_admin("intune_administrator", tags=[make_tag("Berlin")])
    assert _client(outsider).get(reverse("connectors:detail", args=[connector.code])).status_code == 404


def test_wrong_methods_are_405(intune_admin, connector):
    client = _client(intune_admin)
    assert client.get(reverse("connectors:revoke", args=[connector.code])).status_code == 405
    assert client.post(reverse("connectors:list")).status_code == 405


def test_the_keys_page_warns_when_no_healthy_connector_holds_a_used_key(intune_admin, make_certificates):
    from certs.models import EncryptionKey
    from connectors.tests.test_api import _pem

    key = EncryptionKey.objects.create(
        provider_name="P", key_name="K", size=2048, fingerprint="c" * 64, public_key_pem=_pem()
    )
    make_certificates(key, ["one"])
    response = _client(intune_admin).get(reverse("certs:keys"))
    assert b"no healthy connector holds it" in response.content


def test_the_rotation_form_offers_a_key_added_by_hand_only_as_a_disabled_choice_that_says_why(
    intune_admin, make_certificates
):
    from django.utils import timezone

    from certs.models import EncryptionKey
    from connectors.models import KeyRotation
    from connectors.tests.test_api import _pem

    proven = EncryptionKey.objects.create(
        provider_name="P",
        key_name="Connector",
        size=2048,
        fingerprint="d" * 64,
        public_key_pem=_pem(),
        possession_proven_at=timezone.now(),
    )
    by_hand = EncryptionKey.objects.create(
        provider_name="P", key_name="Exported", size=2048, fingerprint="e" * 64, public_key_pem=_pem()
    )
    make_certificates(proven, ["one"])
    client = _client(intune_admin)
    page = client.get(reverse("certs:keys")).content.decode()
    to_key = page.split('name="to_key"')[1].split("</select>")[0]
    assert f'value="{by_hand.pk}" disabled' in to_key
    assert "added by hand: no connector has proven it holds this key" in to_key
    assert f'value="{proven.pk}">' in to_key
    assert "can encrypt new imports but cannot be chosen here" in page

    response = client.post(
        reverse("connectors:rotate"), {"from_key": proven.pk, "to_key": by_hand.pk}, follow=True
    )
    assert "cannot receive re-wrapped passwords" in response.content.decode()
    assert not KeyRotation.objects.exists()


def test_the_old_keys_address_redirects_permanently_to_the_one_encryption_keys_page(helpdesk):
    response = _client(helpdesk).get("/connectors/keys/")
    assert response.status_code == 301
    assert response["Location"] == reverse("certs:keys")


def test_the_encryption_keys_page_shows_which_connectors_hold_each_key_and_offers_rotation(
    intune_admin, helpdesk, connector
):
    from certs.models import EncryptionKey
    from connectors.models import ConnectorKey
    from connectors.tests.test_api import _pem

    key = EncryptionKey.objects.create(
        provider_name="P", key_name="Held", size=2048, fingerprint="f" * 64, public_key_pem=_pem()
    )
    ConnectorKey.objects.create(
        connector=connector, provider_name="P", key_name="Held", fingerprint=key.fingerprint, size=2048
    )
    admin_page = _client(intune_admin).get(reverse("certs:keys")).content.decode()
    holders = admin_page.split('data-testid="key-holders"')[1].split("</table>")[0]
    assert reverse("connectors:detail", args=[connector.code]) in holders and "Srv1" in holders
    assert "Added by hand, not proven" in holders
    assert reverse("connectors:rotate") in admin_page
    helpdesk_page = _client(helpdesk).get(reverse("certs:keys")).content.decode()
    assert "Srv1" in helpdesk_page and reverse("connectors:rotate") not in helpdesk_page


def test_the_detail_page_counts_re_encryptions_per_hour_by_outcome(intune_admin, connector):
    from datetime import timedelta

    from django.utils import timezone

    from connectors.events import record_event
    from connectors.models import ConnectorEvent

    for event_id in (ConnectorEvent.REENCRYPT_SUCCESS,) * 3 + (ConnectorEvent.REENCRYPT_FAILURE,):
        record_event(connector, event_id, "re-encrypted")
    ConnectorEvent.objects.create(
        connector=connector,
        event_id=ConnectorEvent.REENCRYPT_RETRY,
        message="earlier",
        occurred_at=timezone.now() - timedelta(hours=2),
    )
    ConnectorEvent.objects.create(
        connector=connector,
        event_id=ConnectorEvent.REENCRYPT_SUCCESS,
        message="too old to count",
        occurred_at=timezone.now() - timedelta(days=2),
    )
    response = _client(intune_admin).get(reverse("connectors:detail", args=[connector.code]))
    hours = response.context["hours"]
    assert [(h.succeeded, h.retried, h.failed) for h in hours] == [(3, 0, 1), (0, 1, 0)]
    assert b'data-testid="reencryptions-per-hour"' in response.content

"""The user page is rendered once and kept; what it shows is never older than the delivery rows, and
never rendered for a wider scope than the viewer's."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from delivery.models import DeliveryState, Source
from delivery.tests import builders as b
from delivery.tests.conftest import DeviceClient, Tenant
from directory.models import DirectoryUser
from portal import summaries
from portal.lib.fragments import CSRF_SLOT
from portal.models import AuditEvent, ScopeTag, User
from profiles.models import DeliveryStatus
from profiles.tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh() -> None:
    summaries.forget()


def _page(client: Client, user: DirectoryUser) -> str:
    response = client.get(reverse("directory:user", args=[user.object_id]))
    assert response.status_code == 200
    return response.content.decode()


def _admin_client(make_admin: Callable[..., User], settings: Any, role: str, **kwargs: Any) -> Client:
    settings.PORTAL_ENFORCE_MFA = False
    client = Client()
    client.force_login(make_admin(role, **kwargs))
    return client


def test_a_device_report_shows_on_the_user_page_at_once(
    tenant: Tenant, pc: DeviceClient, make_admin: Callable[..., User], settings: Any
) -> None:
    admin = _admin_client(make_admin, settings, "help_desk_operator")
    cert = b.certificate(tenant.user)
    sent = b.state(b.profile("S/MIME encryption"), tenant.device, cert, DeliveryStatus.PENDING)
    DeliveryState.objects.filter(pk=sent.pk).update(sent_at=timezone.now())  # sent at the last check-in
    assert 'data-state="pending"' in _page(admin, tenant.user)

    status, answer = pc.report({"thumbprint": cert.thumbprint, "result": "failed", "code": "keystore_locked"})
    assert status == 200, answer

    page = _page(admin, tenant.user)
    assert 'data-state="error"' in page and "keystore_locked" in page


def test_a_delivery_row_written_without_an_audit_event_shows_at_once(
    make_admin: Callable[..., User], settings: Any
) -> None:
    admin = _admin_client(make_admin, settings, "help_desk_operator")
    user = f.user("alice@contoso.example")
    row = b.state(b.profile("S/MIME encryption"), f.device("PC-ALICE", user), b.certificate(user))
    assert 'data-state="succeeded"' in _page(admin, user)
    events = AuditEvent.objects.count()

    # As Intune's status sync writes them: bulk_update, updated_at stamped by hand, no audit event.
    row.status, row.source, row.updated_at = DeliveryStatus.ERROR, Source.INTUNE, timezone.now()
    DeliveryState.objects.bulk_update([row], ["status", "source", "updated_at"])

    page = _page(admin, user)
    assert AuditEvent.objects.count() == events
    assert 'data-state="error"' in page and 'data-testid="source-intune"' in page


def test_a_removed_delivery_row_leaves_the_user_page_at_once(
    make_admin: Callable[..., User], settings: Any
) -> None:
    admin = _admin_client(make_admin, settings, "help_desk_operator")
    user = f.user("alice@contoso.example")
    device = f.device("PC-ALICE", user)
    profile = b.profile("S/MIME encryption")
    b.state(profile, device, b.certificate(user))
    gone = b.state(profile, device, b.certificate(user), DeliveryStatus.ERROR, code="pfx_open_failed")
    assert "pfx_open_failed" in _page(admin, user)

    DeliveryState.objects.filter(pk=gone.pk).delete()

    assert "pfx_open_failed" not in _page(admin, user)


def test_a_help_desk_operator_of_one_tag_never_gets_the_page_rendered_for_a_wider_scope(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], settings: Any
) -> None:
    paris, berlin = make_tag("Paris"), make_tag("Berlin")
    everyone = _admin_client(make_admin, settings, "help_desk_operator")
    in_paris = _admin_client(make_admin, settings, "help_desk_operator", tags=[paris])
    user = f.user("alice@contoso.example")
    device = f.device("PC-ALICE", user)
    b.state(b.profile("Paris mail", paris), device, b.certificate(user))
    b.state(b.profile("Berlin mail", berlin), device, b.certificate(user))
    assert "Berlin mail" in _page(everyone, user)  # kept for the wider scope

    page = _page(in_paris, user)

    assert "Paris mail" in page and "Berlin mail" not in page


def test_the_kept_page_posts_a_resend_with_the_viewers_own_csrf_token(
    make_admin: Callable[..., User], settings: Any
) -> None:
    settings.PORTAL_ENFORCE_MFA = False
    user = f.user("alice@contoso.example")
    b.state(b.profile("S/MIME encryption"), f.device("PC-ALICE", user), b.certificate(user))
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    first.force_login(make_admin("intune_administrator"))
    second.force_login(make_admin("intune_administrator"))
    _page(first, user)

    page = _page(second, user)  # the piece the first admin's view rendered

    assert CSRF_SLOT not in page
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    assert token and action
    response = second.post(
        action.group(1), {"csrfmiddlewaretoken": token.group(1), "next": f"/users/{user.object_id}/"}
    )
    assert response.status_code == 302


def test_a_kept_user_page_runs_the_same_few_queries_whatever_the_user_holds(
    make_admin: Callable[..., User], settings: Any
) -> None:
    admin = _admin_client(make_admin, settings, "help_desk_operator")
    user = f.user("alice@contoso.example")
    profile = b.profile("S/MIME encryption")

    def kept_queries() -> int:
        _page(admin, user)
        with CaptureQueriesContext(connection) as captured:
            page = _page(admin, user)
        assert "PC-" in page
        return len(captured)

    b.state(profile, f.device("PC-00", user), b.certificate(user))
    few = kept_queries()
    for i in range(1, 10):
        b.state(profile, f.device(f"PC-{i:02d}", user), b.certificate(user))
    many = kept_queries()

    summaries.forget()
    with CaptureQueriesContext(connection) as rendered:
        _page(admin, user)
    assert few == many < len(rendered)


def test_a_kept_page_shows_each_admin_their_own_name_and_roles_and_the_same_page_as_rendered(
    make_admin: Callable[..., User], settings: Any
) -> None:
    settings.PORTAL_ENFORCE_MFA = False
    user = f.user("alice@contoso.example")
    b.state(b.profile("S/MIME encryption"), f.device("PC-ALICE", user), b.certificate(user))
    first, second = Client(), Client()
    first.force_login(make_admin("help_desk_operator", email="first.admin@contoso.example"))
    second.force_login(make_admin("help_desk_operator", email="second.admin@contoso.example"))
    summaries.forget()
    rendered = _page(second, user)
    summaries.forget()
    _page(first, user)

    kept = _page(second, user)

    assert "second.admin" in kept and "first.admin" not in kept
    assert "Help Desk Operator" in kept
    token = re.compile(r'(name="csrfmiddlewaretoken" value=|"X-CSRFToken": )"[^"]+"')
    assert token.sub("", kept) == token.sub("", rendered)


def test_a_message_after_a_resend_shows_on_the_kept_user_page(
    make_admin: Callable[..., User], settings: Any
) -> None:
    admin = _admin_client(make_admin, settings, "intune_administrator")
    user = f.user("alice@contoso.example")
    device = f.device("PC-ALICE", user)
    b.state(b.profile("S/MIME encryption"), device, b.certificate(user))
    _page(admin, user)

    response = admin.post(
        reverse("delivery:resend", args=[device.device_id]),
        {"next": f"/users/{user.object_id}/"},
        follow=True,
    )

    page = response.content.decode()
    assert 'class="messages"' in page and "PC-ALICE" in page
    assert 'class="messages"' not in _page(admin, user)  # shown once

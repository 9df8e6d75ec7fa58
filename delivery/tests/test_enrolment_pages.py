"""Devices > Enrolment and the device page's enrolment section, through the test client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from delivery.models import DeviceCredential, DeviceEnrollmentToken, EnrollmentSecret
from delivery.tests.conftest import SECRET, DeviceClient, Tenant, key
from directory.models import Device
from portal.models import AuditEvent, ScopeTag, User
from profiles.tests import factories as f

pytestmark = pytest.mark.django_db

ENROLMENT = reverse("delivery:enrolment")


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _device_page(device: Device) -> str:
    return reverse("directory:device", args=[device.device_id])


def _issue(admin: Client, device: Device) -> str:
    response = admin.post(reverse("delivery:token_issue"), {"device": device.name, "hours": 2})
    assert response.status_code == 200, response.content
    token: str = response.context["secret"]
    return token


def _audit_text() -> str:
    return str(list(AuditEvent.objects.values()))


def test_a_created_secret_is_shown_once_and_never_again(intune_admin: User, tenant: Tenant) -> None:
    admin = _client(intune_admin)
    response = admin.post(reverse("delivery:secret_create"))
    secret = response.context["secret"]
    assert secret.startswith("pfxs_") and secret.encode() in response.content
    assert response["Cache-Control"] == "no-store"
    row = EnrollmentSecret.objects.get(code=response.context["row"].code)
    assert secret not in str(EnrollmentSecret.objects.values().get(pk=row.pk))
    assert secret not in _audit_text() and f"{row.hint}…" in _audit_text()
    page = admin.get(ENROLMENT).content.decode()
    assert secret not in page and f"{row.hint}…" in page


def test_a_revoked_secret_refuses_enrolment(intune_admin: User, tenant: Tenant, client: Client) -> None:
    admin = _client(intune_admin)
    row = EnrollmentSecret.objects.get()
    revoke = reverse("delivery:secret_revoke", args=[row.code])
    assert revoke in admin.get(ENROLMENT).content.decode()
    assert "Devices and tools holding this secret can no longer enrol" in admin.get(revoke).content.decode()
    page = admin.post(revoke, follow=True).content.decode()
    assert "revoked: no device can enrol with it" in page and "Revoked" in page
    assert AuditEvent.objects.filter(activity="Revoke device enrolment secret").count() == 1
    status, answer = DeviceClient(client, tenant.device, key(1)).enroll(secret=SECRET)
    assert (status, answer["error"]["code"]) == (401, "invalid_secret")


def test_a_token_enrols_its_device_once_and_is_never_shown_again(
    intune_admin: User, tenant: Tenant, client: Client
) -> None:
    admin = _client(intune_admin)
    form = admin.get(reverse("delivery:token_issue") + f"?device={tenant.device.device_id}")
    assert str(tenant.device.device_id) in form.content.decode()
    token = _issue(admin, tenant.device)
    assert token.startswith("pfxt_") and token not in _audit_text()
    assert token not in admin.get(ENROLMENT).content.decode()
    assert token not in admin.get(_device_page(tenant.device)).content.decode()
    assert "Unused" in admin.get(ENROLMENT).content.decode()

    device = DeviceClient(client, tenant.device, key(1))
    assert device.enroll(secret="", device_id="", token=token)[0] == 201
    status, answer = DeviceClient(client, tenant.device, key(2)).enroll(secret="", device_id="", token=token)
    assert (status, answer["error"]["code"]) == (401, "token_used")
    page = admin.get(ENROLMENT).content.decode()
    assert "Used " in page and "Administrator-issued token" in page


def test_a_token_for_a_device_not_in_the_directory_is_refused_on_the_form(
    intune_admin: User, tenant: Tenant
) -> None:
    response = _client(intune_admin).post(
        reverse("delivery:token_issue"), {"device": "PC-NOBODY", "hours": 2}
    )
    assert response.status_code == 200
    assert "No device in the directory has this name or ID." in response.content.decode()
    assert not DeviceEnrollmentToken.objects.exists()


def test_a_cancelled_token_enrols_nothing(intune_admin: User, tenant: Tenant, client: Client) -> None:
    admin = _client(intune_admin)
    token = _issue(admin, tenant.device)
    row = DeviceEnrollmentToken.objects.get()
    device_page = _device_page(tenant.device)
    assert reverse("delivery:token_cancel", args=[row.code]) in admin.get(device_page).content.decode()
    response = admin.post(reverse("delivery:token_cancel", args=[row.code]), {"next": device_page})
    assert response["Location"] == device_page
    assert not DeviceEnrollmentToken.objects.exists()
    assert AuditEvent.objects.filter(activity="Cancel device enrolment token").count() == 1
    status, answer = DeviceClient(client, tenant.device, key(1)).enroll(secret="", device_id="", token=token)
    assert (status, answer["error"]["code"]) == (401, "invalid_token")


def test_revoking_a_credential_refuses_the_devices_next_check_in(
    intune_admin: User, pc: DeviceClient
) -> None:
    admin = _client(intune_admin)
    credential = pc.row
    device_page = _device_page(pc.device)
    revoke = reverse("delivery:credential_revoke", args=[credential.code])
    assert revoke in admin.get(device_page).content.decode()
    confirm = admin.get(f"{revoke}?next={device_page}").content.decode()
    assert "Revoke the device credential of PC-ALICE?" in confirm and f'value="{device_page}"' in confirm
    response = admin.post(revoke, {"next": device_page})
    assert response["Location"] == device_page
    assert AuditEvent.objects.filter(activity="Revoke device credential").count() == 1
    status, answer = pc.post("check-in", {})
    assert (status, answer["error"]["code"]) == (401, "credential_revoked")
    section = admin.get(device_page).content.decode()
    assert "Revoked</span>" in section and intune_admin.display_name in section


def test_a_revoke_link_leads_back_only_to_pages_of_the_portal(intune_admin: User, pc: DeviceClient) -> None:
    revoke = reverse("delivery:credential_revoke", args=[pc.row.code])
    response = _client(intune_admin).post(revoke, {"next": "https://evil.example/"})
    assert response["Location"] == ENROLMENT


@pytest.mark.parametrize("role", ["read_only_operator", "help_desk_operator"])
def test_read_only_roles_see_the_lists_but_every_change_is_refused(
    role: str, make_admin: Callable[..., User], intune_admin: User, pc: DeviceClient
) -> None:
    token = _issue(_client(intune_admin), pc.device)
    reader = _client(make_admin(role))
    page = reader.get(ENROLMENT).content.decode()
    assert "PC-ALICE" in page and EnrollmentSecret.objects.get().hint in page and token[:9] in page
    assert "/revoke/" not in page and "/cancel/" not in page and reverse("delivery:secret_create") not in page
    device = reader.get(_device_page(pc.device)).content.decode()
    assert (
        "Enrolled</span>" in device and "Revoke credential" not in device and "Issue enrolment" not in device
    )
    secret, credential = EnrollmentSecret.objects.get(), pc.row
    token_row = DeviceEnrollmentToken.objects.get()
    refused: list[tuple[str, str, dict[str, Any]]] = [
        ("post", reverse("delivery:secret_create"), {}),
        ("get", reverse("delivery:secret_revoke", args=[secret.code]), {}),
        ("post", reverse("delivery:secret_revoke", args=[secret.code]), {}),
        ("get", reverse("delivery:token_issue"), {}),
        ("post", reverse("delivery:token_issue"), {"device": "PC-ALICE", "hours": 1}),
        ("post", reverse("delivery:token_cancel", args=[token_row.code]), {}),
        ("get", reverse("delivery:credential_revoke", args=[credential.code]), {}),
        ("post", reverse("delivery:credential_revoke", args=[credential.code]), {}),
    ]
    for method, url, data in refused:
        assert getattr(reader, method)(url, data).status_code == 403, (method, url)
    assert EnrollmentSecret.objects.filter(revoked_at=None).count() == 1
    assert DeviceEnrollmentToken.objects.count() == 1 and pc.row == credential


def test_an_admin_without_directory_read_sees_nothing(
    make_admin: Callable[..., User], pc: DeviceClient
) -> None:
    nobody = _client(make_admin(None))
    assert nobody.get(ENROLMENT).status_code == 403
    assert nobody.get(reverse("delivery:credential_revoke", args=[pc.row.code])).status_code == 403


def test_a_scope_tagged_administrator_manages_tokens_and_credentials_but_not_tenant_secrets(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], pc: DeviceClient
) -> None:
    """Devices are tenant-wide like the directory; a secret enrols any device, so it needs the whole tenant."""
    tagged = _client(make_admin("intune_administrator", tags=[make_tag("Paris")]))
    page = tagged.get(ENROLMENT).content.decode()
    assert "PC-ALICE" in page and "only administrators whose role assignment has no scope tags" in page
    assert "Create enrolment secret" not in page
    secret = EnrollmentSecret.objects.get()
    assert tagged.post(reverse("delivery:secret_create")).status_code == 403
    assert tagged.post(reverse("delivery:secret_revoke", args=[secret.code])).status_code == 403
    assert EnrollmentSecret.objects.count() == 1 and EnrollmentSecret.objects.get().revoked_at is None
    assert _issue(tagged, pc.device).startswith("pfxt_")
    assert tagged.post(reverse("delivery:credential_revoke", args=[pc.row.code])).status_code == 302


def test_the_device_page_says_when_a_device_never_enrolled(intune_admin: User, tenant: Tenant) -> None:
    section = _client(intune_admin).get(_device_page(tenant.device)).content.decode()
    assert "Not enrolled" in section
    assert f"{reverse('delivery:token_issue')}?device={tenant.device.device_id}" in section


def test_the_credentials_list_filters_by_device_name_and_state(intune_admin: User, tenant: Tenant) -> None:
    _credentials([f.device(f"LAPTOP-{n}", None) for n in range(3)])
    DeviceCredential.objects.filter(device__name="LAPTOP-1").update(revoked_at=timezone.now())
    admin = _client(intune_admin)
    found = admin.get(ENROLMENT, {"q": "laptop-2"}, headers={"HX-Request": "true"}).content.decode()
    assert "LAPTOP-2" in found and "LAPTOP-0" not in found and "<h1>" not in found
    revoked = admin.get(ENROLMENT, {"state": "revoked"}).content.decode()
    assert "LAPTOP-1" in revoked and "LAPTOP-0" not in revoked
    assert admin.get(ENROLMENT, {"state": "lost"}).status_code == 400


def _credentials(devices: list[Device]) -> None:
    DeviceCredential.objects.bulk_create(
        DeviceCredential(
            device=device,
            credential_hash=f"{device.pk:064x}",
            public_key_pem="-----BEGIN PUBLIC KEY-----",
            key_fingerprint=f"{device.pk:064x}",
            key_size=2048,
            method="secret",
        )
        for device in devices
    )


def test_the_credentials_list_runs_as_many_queries_for_many_rows_as_for_few(
    intune_admin: User, db: None
) -> None:
    admin = _client(intune_admin)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = admin.get(ENROLMENT, {"page": "1"})
        assert response.status_code == 200
        return len(captured)

    # Past one page either way: the pager counts once, however many rows there are.
    _credentials([f.device(f"PC-{n:03}", None) for n in range(51)])
    few = queries()
    _credentials([f.device(f"PC-{n:03}", None) for n in range(51, 120)])
    many = queries()
    assert many == few
    page = admin.get(ENROLMENT, {"page": "3"}).content.decode()
    assert "Page 3 of 3 · 120 credentials" in page and "PC-000" in page and "PC-119" not in page

"""``manage.py device_enrolment``: a secret or a one-time token that a device then enrols with."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from delivery.models import DeviceEnrollmentToken, EnrollmentSecret
from delivery.tests.conftest import DeviceClient, Tenant, key
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("device_enrolment", *args, stdout=out)
    return out.getvalue().strip()


def test_a_new_secret_enrols_devices_and_only_its_hash_is_kept(tenant: Tenant, client: Client) -> None:
    secret = _run("--secret")
    assert secret.startswith("pfxs_")
    assert not EnrollmentSecret.objects.filter(hint=secret).exists()
    assert DeviceClient(client, tenant.device, key(1)).enroll(secret=secret)[0] == 201
    assert AuditEvent.objects.filter(activity="Create device enrolment secret").exists()


def test_revoked_secrets_enrol_nothing(tenant: Tenant, client: Client) -> None:
    assert "revoked" in _run("--revoke-secrets")
    status, answer = DeviceClient(client, tenant.device, key(1)).enroll()
    assert (status, answer["error"]["code"]) == (401, "invalid_secret")


def test_a_token_names_its_device(tenant: Tenant, client: Client) -> None:
    token = _run("--token", "pc-alice")
    assert DeviceEnrollmentToken.objects.get().device == tenant.device
    assert DeviceClient(client, tenant.device, key(1)).enroll(secret="", token=token, device_id="")[0] == 201


def test_a_token_for_an_unknown_device_is_refused(tenant: Tenant) -> None:
    with pytest.raises(CommandError, match="No current device"):
        _run("--token", "PC-NOBODY")

"""The delivery loop through the device API: check-in, re-encryption, install report, rollover, removal."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certs.models import Certificate
from connectors.models import ConnectorEvent, ConnectorJob
from delivery import protocol
from delivery.models import DeliveryState
from delivery.simulator import thumbprint_of
from delivery.tests.conftest import DeviceClient, Tenant
from profiles.models import DeliveryStatus, IntendedPurpose
from profiles.reports import evaluate

pytestmark = pytest.mark.django_db


def _open(pc: DeviceClient, item: dict[str, str]) -> str:
    password = protocol.decrypt_password(pc.key, base64.b64decode(item["encrypted_password"]))
    _key, certificate, _ = pkcs12.load_key_and_certificates(base64.b64decode(item["pfx"]), password)
    assert certificate is not None
    return thumbprint_of(certificate.public_bytes(serialization.Encoding.DER))


def _states(tenant: Tenant) -> dict[str, str]:
    return dict(
        DeliveryState.objects.filter(device=tenant.device).values_list("certificate_thumbprint", "status")
    )


def test_a_certificate_reaches_the_device_encrypted_to_its_key_and_the_profile_turns_succeeded(
    tenant: Tenant, pc: DeviceClient
) -> None:
    profile = tenant.profile()
    certificate = tenant.certificate()

    first = pc.check_in()
    assert first["install"] == [] and first["waiting"] == 1
    assert _states(tenant) == {certificate.thumbprint: DeliveryStatus.PENDING}
    assert tenant.connector_does_jobs() != {}
    assert ConnectorEvent.objects.filter(event_id=ConnectorEvent.REENCRYPT_SUCCESS).count() == 1

    second = pc.check_in()
    [item] = second["install"]
    assert _open(pc, item) == certificate.thumbprint == item["thumbprint"]
    status, answer = pc.report({"thumbprint": item["thumbprint"], "result": "installed"})
    assert (status, answer["results"]) == (200, {certificate.thumbprint: "accepted"})
    assert _states(tenant) == {certificate.thumbprint: DeliveryStatus.SUCCEEDED}
    assert {r.device_id: r.state for r in evaluate(profile).pairs()}[
        tenant.device.pk
    ] == DeliveryStatus.SUCCEEDED
    # Delivered once: the next check-in sends nothing again.
    assert pc.check_in()["install"] == []


def test_two_check_ins_at_once_share_one_re_encryption_job(tenant: Tenant, pc: DeviceClient) -> None:
    tenant.profile()
    tenant.certificate()
    pc.check_in()
    pc.check_in()
    assert ConnectorJob.objects.filter(kind=ConnectorJob.Kind.DEVICE).count() == 1


def test_a_failed_install_is_an_error_with_the_device_code_and_retry_sends_it_again(
    tenant: Tenant, pc: DeviceClient
) -> None:
    from delivery import actions
    from portal.audit import Actor

    profile = tenant.profile()
    certificate = tenant.certificate()
    pc.check_in()
    tenant.connector_does_jobs()
    [item] = pc.check_in()["install"]
    pc.report(
        {"thumbprint": item["thumbprint"], "result": "failed", "code": "keystore_locked", "message": "locked"}
    )
    row = DeliveryState.objects.get(device=tenant.device, certificate=certificate)
    assert (row.status, row.error_code, row.error_message) == (
        DeliveryStatus.ERROR,
        "keystore_locked",
        "locked",
    )
    assert pc.check_in()["install"] == []

    assert actions.retry_failed(Actor.system(), profile) == 1
    assert [i["thumbprint"] for i in pc.check_in()["install"]] == [certificate.thumbprint]


def test_a_newer_signing_certificate_is_installed_before_the_superseded_one_is_removed(
    tenant: Tenant, pc: DeviceClient
) -> None:
    tenant.profile(IntendedPurpose.SMIME_SIGNING)
    old = tenant.certificate(purpose=IntendedPurpose.SMIME_SIGNING, since=30)
    pc.check_in()
    tenant.connector_does_jobs()
    [item] = pc.check_in()["install"]
    pc.report({"thumbprint": item["thumbprint"], "result": "installed"})

    new = tenant.certificate(purpose=IntendedPurpose.SMIME_SIGNING, since=1)
    policy = pc.check_in()
    assert policy["remove"] == [] and policy["waiting"] == 1
    tenant.connector_does_jobs()
    policy = pc.check_in()
    # The new one comes while the old one stays.
    assert [i["thumbprint"] for i in policy["install"]] == [new.thumbprint] and policy["remove"] == []
    assert _states(tenant)[old.thumbprint] == DeliveryStatus.SUCCEEDED
    pc.report({"thumbprint": new.thumbprint, "result": "installed"})

    policy = pc.check_in()
    assert policy["remove"] == [{"thumbprint": old.thumbprint}]
    assert _states(tenant)[old.thumbprint] == DeliveryStatus.REMOVAL_PENDING
    pc.report({"thumbprint": old.thumbprint, "result": "removed"})
    assert _states(tenant) == {
        old.thumbprint: DeliveryStatus.REMOVED,
        new.thumbprint: DeliveryStatus.SUCCEEDED,
    }


def test_encryption_certificates_are_kept_side_by_side_past_ones_included(
    tenant: Tenant, pc: DeviceClient
) -> None:
    tenant.profile(IntendedPurpose.SMIME_ENCRYPTION)
    expired = tenant.certificate(since=800, days=-30)
    old = tenant.certificate(since=30)
    new = tenant.certificate(since=1)
    pc.check_in()
    tenant.connector_does_jobs()
    sent = {i["thumbprint"] for i in pc.check_in()["install"]}
    assert sent == {expired.thumbprint, old.thumbprint, new.thumbprint}


def test_a_deleted_certificate_is_removed_at_the_next_check_in(tenant: Tenant, pc: DeviceClient) -> None:
    tenant.profile()
    certificate = tenant.certificate()
    thumbprint = certificate.thumbprint
    pc.check_in()
    tenant.connector_does_jobs()
    pc.check_in()
    pc.report({"thumbprint": thumbprint, "result": "installed"})
    certificate.delete()

    assert pc.check_in()["remove"] == [{"thumbprint": thumbprint}]
    _status, answer = pc.report({"thumbprint": thumbprint, "result": "removed"})
    assert answer["results"] == {thumbprint: "accepted"}
    # The profile still reaches the device: it waits for the user's next certificate.
    assert _states(tenant) == {thumbprint: DeliveryStatus.REMOVED, "": DeliveryStatus.PENDING}
    assert pc.check_in()["remove"] == []


def test_an_unassigned_profile_takes_its_certificate_away(tenant: Tenant, pc: DeviceClient) -> None:
    profile = tenant.profile()
    certificate = tenant.certificate()
    pc.check_in()
    tenant.connector_does_jobs()
    pc.check_in()
    pc.report({"thumbprint": certificate.thumbprint, "result": "installed"})
    profile.all_users = False
    profile.save()
    assert pc.check_in()["remove"] == [{"thumbprint": certificate.thumbprint}]


def test_a_certificate_not_yet_re_encrypted_and_then_unassigned_is_never_sent(
    tenant: Tenant, pc: DeviceClient
) -> None:
    profile = tenant.profile()
    certificate = tenant.certificate()
    pc.check_in()
    profile.all_users = False
    profile.save()
    assert pc.check_in()["remove"] == []
    assert _states(tenant) == {certificate.thumbprint: DeliveryStatus.REMOVED}


def test_a_user_without_a_certificate_leaves_a_device_level_pending_row(
    tenant: Tenant, pc: DeviceClient
) -> None:
    tenant.profile()
    assert pc.check_in()["install"] == []
    row = DeliveryState.objects.get(device=tenant.device)
    assert (row.certificate_thumbprint, row.status, row.error_code) == (
        "",
        DeliveryStatus.PENDING,
        "no_certificate",
    )
    tenant.certificate()
    pc.check_in()
    assert not DeliveryState.objects.filter(device=tenant.device, certificate_thumbprint="").exists()


def test_the_re_encrypted_password_is_one_block_for_the_device_key_and_never_plaintext(
    tenant: Tenant, pc: DeviceClient
) -> None:
    tenant.profile()
    tenant.certificate(password="Very-Secret-Pfx-Pw")
    pc.check_in()
    tenant.connector_does_jobs()
    job = ConnectorJob.objects.get(kind=ConnectorJob.Kind.DEVICE)
    assert len(bytes(job.device_password)) == 256
    assert b"Very-Secret-Pfx-Pw" not in bytes(job.device_password)
    assert job.claimed_at is not None and job.finished_at is not None
    assert job.finished_at - job.claimed_at < timedelta(minutes=1)


def _delivered_and_quiet(tenant: Tenant, pc: DeviceClient) -> str:
    tenant.profile()
    certificate = tenant.certificate()
    pc.check_in()
    tenant.connector_does_jobs()
    [item] = pc.check_in()["install"]
    pc.report({"thumbprint": item["thumbprint"], "result": "installed"})
    assert pc.check_in() == {"install": [], "remove": [], "waiting": 0, "reason": ""}
    return certificate.thumbprint


def test_a_check_in_with_nothing_to_do_is_answered_with_two_queries(
    tenant: Tenant, pc: DeviceClient, settings: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _delivered_and_quiet(tenant, pc)
    settings.DEVICE_POLICY_RECHECK_SECONDS = 60  # the profile specs were just read
    with CaptureQueriesContext(connection) as queries:
        assert pc.check_in()["install"] == []
    # The credential with its device and user, and the fingerprint of what the answer depends on.
    assert len(queries) == 2, [q["sql"][:80] for q in queries]


@pytest.mark.parametrize("change", ["certificate", "group", "profile", "retry", "deleted"])
def test_a_quiet_device_sees_any_change_at_its_next_check_in(
    tenant: Tenant, pc: DeviceClient, change: str
) -> None:
    from directory.models import Group, GroupUserMember
    from profiles.models import Profile

    thumbprint = _delivered_and_quiet(tenant, pc)
    if change == "certificate":
        tenant.certificate()
        assert pc.check_in()["waiting"] == 1
    elif change == "group":
        # Excluded from the profile through a new group membership.
        group = Group.objects.create(display_name="Leavers", kind=Group.Kind.USER)
        profile = Profile.objects.get()
        profile.assignments.create(group=group, mode="exclude")
        GroupUserMember.objects.create(group=group, user=tenant.user)
        assert pc.check_in()["remove"] == [{"thumbprint": thumbprint}]
    elif change == "profile":
        profile = Profile.objects.get()
        profile.all_users = False
        profile.save()
        assert pc.check_in()["remove"] == [{"thumbprint": thumbprint}]
    elif change == "retry":
        from delivery import actions
        from portal.audit import Actor

        actions.resend(Actor.system(), tenant.device, Profile.objects.all())
        assert [i["thumbprint"] for i in pc.check_in()["install"]] == [thumbprint]
    else:
        Certificate.objects.filter(thumbprint=thumbprint).delete()
        assert pc.check_in()["remove"] == [{"thumbprint": thumbprint}]


def test_a_device_waiting_for_re_encryption_gets_the_certificate_as_soon_as_it_is_done(
    tenant: Tenant, pc: DeviceClient
) -> None:
    tenant.profile()
    certificate = tenant.certificate()
    pc.check_in()  # queues the job
    assert pc.check_in()["waiting"] == 1  # nothing changed: the same answer
    assert pc.check_in()["waiting"] == 1
    tenant.connector_does_jobs()
    assert [i["thumbprint"] for i in pc.check_in()["install"]] == [certificate.thumbprint]

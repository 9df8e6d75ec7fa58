"""Device identity: enrolment secrets and tokens, enrolment, authentication and revocation.

Every change is atomic and writes its audit row in the same transaction; changes a device makes
are audited under the device's name. Secrets, tokens and credentials are kept only as hashes.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from delivery import protocol
from delivery.models import DeviceCredential, DeviceEnrollmentToken, EnrollmentMethod, EnrollmentSecret
from directory.models import Device
from portal import audit
from portal.audit import Actor
from portal.lib import lean, tokens
from portal.lib.refusal import Refused
from portal.lib.tokens import hash_secret
from portal.models import AuditEvent

CATEGORY = "Devices"
CREDENTIAL_PREFIX = "pfxd_"
SECRET_PREFIX = "pfxs_"
TOKEN_PREFIX = "pfxt_"
TOKEN_HOURS = 24


def device_actor(device: Device, ip: str | None = None) -> Actor:
    return Actor(user=None, name=f"Device {device.name}", type=AuditEvent.ActorType.APPLICATION, ip=ip)


@transaction.atomic
def secret_create(actor: Actor, *, value: str = "") -> tuple[EnrollmentSecret, str]:
    """A new tenant enrolment secret (``value`` lets the demo use a known one); shown once."""
    secret = value or tokens.new(SECRET_PREFIX)
    if len(secret) < 16:
        raise Refused("secret_too_short", "An enrolment secret has at least 16 characters.")
    if EnrollmentSecret.objects.filter(secret_hash=hash_secret(secret)).exists():
        row = EnrollmentSecret.objects.get(secret_hash=hash_secret(secret))
        if row.revoked_at is None:
            return row, secret
        raise Refused("secret_revoked", "That enrolment secret was revoked; choose another.", status=409)
    row = EnrollmentSecret.objects.create(
        secret_hash=hash_secret(secret), hint=tokens.hint(secret, SECRET_PREFIX), created_by_name=actor.name
    )
    audit.record(
        actor,
        activity="Create device enrolment secret",
        category=CATEGORY,
        operation="create",
        resources=[audit.resource(row, type="Device enrolment secret", name=f"{row.hint}…")],
    )
    return row, secret


@transaction.atomic
def secret_revoke(actor: Actor, row: EnrollmentSecret) -> None:
    if EnrollmentSecret.objects.filter(pk=row.pk, revoked_at=None).update(revoked_at=timezone.now()):
        audit.record(
            actor,
            activity="Revoke device enrolment secret",
            category=CATEGORY,
            operation="update",
            resources=[audit.resource(row, type="Device enrolment secret", name=f"{row.hint}…")],
        )


@transaction.atomic
def token_issue(
    actor: Actor, device: Device, *, hours: int = TOKEN_HOURS
) -> tuple[DeviceEnrollmentToken, str]:
    """A one-time token that enrols exactly this device, valid for ``hours``; shown once."""
    if device.removed_at is not None:
        raise Refused("device_removed", "This device is no longer in the directory.")
    token = tokens.new(TOKEN_PREFIX)
    row = DeviceEnrollmentToken.objects.create(
        token_hash=hash_secret(token),
        hint=tokens.hint(token, TOKEN_PREFIX),
        device=device,
        created_by_name=actor.name,
        expires_at=timezone.now() + timedelta(hours=max(1, min(hours, 24 * 30))),
    )
    audit.record(
        actor,
        activity="Issue device enrolment token",
        category=CATEGORY,
        operation="create",
        resources=[
            audit.resource(row, type="Device enrolment token", name=f"{row.hint}… for {device.name}"),
            audit.resource(type="Device", id=str(device.device_id), name=device.name, scope=Device),
        ],
    )
    return row, token


@transaction.atomic
def token_cancel(actor: Actor, row: DeviceEnrollmentToken) -> None:
    """Withdraw an unused token (say, it was sent to the wrong person): it can no longer enrol its device.

    The token is deleted, as a connector's unused enrolment token is; the audit log keeps it.
    """
    device = row.device
    resources = [
        audit.resource(row, type="Device enrolment token", name=f"{row.hint}… for {device.name}"),
        audit.resource(type="Device", id=str(device.device_id), name=device.name, scope=Device),
    ]
    deleted, _ = DeviceEnrollmentToken.objects.filter(pk=row.pk, used_at=None).delete()
    if not deleted:
        raise Refused("token_used", "This token has already enrolled its device.", status=409)
    audit.record(
        actor,
        activity="Cancel device enrolment token",
        category=CATEGORY,
        operation="delete",
        resources=resources,
    )


def _device_by_secret(secret: str, device_id: str) -> Device:
    if not EnrollmentSecret.objects.filter(secret_hash=hash_secret(secret), revoked_at=None).exists():
        raise Refused("invalid_secret", "The enrolment secret is not valid.", status=401)
    try:
        code = uuid.UUID(device_id)
    except ValueError as exc:
        raise Refused("unknown_device", "device_id must be the device's Intune device id.") from exc
    device = Device.objects.filter(device_id=code, removed_at=None).first()
    if device is None:
        raise Refused("unknown_device", "No device with this id is in the directory.", status=404)
    return device


def _device_by_token(token: str, now: datetime) -> tuple[Device, DeviceEnrollmentToken]:
    row = tokens.redeemable(
        DeviceEnrollmentToken.objects.select_for_update()
        .select_related("device")
        .filter(token_hash=hash_secret(token))
        .first(),
        now,
        "enrolment token",
    )
    if row.device.removed_at is not None:
        raise Refused("unknown_device", "The token's device is no longer in the directory.", status=404)
    return row.device, row


@transaction.atomic
def device_enroll(
    *,
    public_key_pem: str,
    proof: str,
    platform: str,
    secret: str = "",
    token: str = "",
    device_id: str = "",
    agent_version: str = "",
    ip: str | None = None,
) -> tuple[DeviceCredential, str]:
    """Trade a tenant secret (with the device's id) or a one-time token for a device credential.

    The device's earlier credential, if any, is revoked: one key per device at a time.
    """
    now = timezone.now()
    try:
        key = protocol.load_public(public_key_pem)
    except protocol.BadPublicKey as exc:
        raise Refused("bad_public_key", str(exc)) from exc
    if not protocol.holds(key, proof):
        raise Refused("no_proof_of_possession", "proof is not a signature of the statement by this key.")
    token_row = None
    if token:
        device, token_row = _device_by_token(token, now)
    elif secret:
        device = _device_by_secret(secret, device_id)
    else:
        raise Refused("bad_request", "Send an enrolment secret with device_id, or an enrolment token.")
    if platform and platform != device.platform:
        raise Refused(
            "platform_mismatch",
            f"The directory lists {device.name} as {device.get_platform_display()}, not {platform}.",
        )
    if token_row is not None:
        DeviceEnrollmentToken.objects.filter(pk=token_row.pk).update(used_at=now)
    DeviceCredential.objects.filter(device=device, revoked_at=None).update(
        revoked_at=now, revoked_by_name="Enrolled again"
    )
    credential = tokens.new(CREDENTIAL_PREFIX)
    row = DeviceCredential.objects.create(
        device=device,
        credential_hash=hash_secret(credential),
        public_key_pem=public_key_pem.strip(),
        key_fingerprint=protocol.fingerprint(key),
        key_size=key.key_size,
        method=EnrollmentMethod.TOKEN if token_row is not None else EnrollmentMethod.SECRET,
        agent_version=agent_version[:50],
        enrolled_at=now,
        enrolled_ip=ip,
    )
    audit.record(
        device_actor(device, ip),
        activity="Enrol device",
        category=CATEGORY,
        operation="create",
        resources=[
            audit.resource(type="Device", id=str(device.device_id), name=device.name, scope=Device),
            audit.resource(row, type="Device credential", name=f"key {row.key_fingerprint[:16]}"),
        ],
    )
    return row, credential


# Every device request reads it: compiled once, not built by the ORM each time.
_BY_HASH = lean.Query(
    lambda credential_hash: (
        DeviceCredential.objects.select_related("device", "device__primary_user")
        .filter(credential_hash=credential_hash)
        .order_by()
    ),
    str,
)


def device_authenticate(credential: str) -> DeviceCredential:
    """The live credential with this value, with its device and primary user."""
    if not credential.startswith(CREDENTIAL_PREFIX):
        raise Refused("invalid_credential", "Send 'Authorization: Bearer <device credential>'.", status=401)
    row = _BY_HASH.first(hash_secret(credential))
    if row is None:
        raise Refused("invalid_credential", "The device credential is not valid.", status=401)
    if row.revoked_at is not None:
        raise Refused("credential_revoked", "This device credential has been revoked.", status=401)
    if row.device.removed_at is not None:
        raise Refused("credential_revoked", "This device is no longer in the directory.", status=401)
    return row


@transaction.atomic
def credential_revoke(actor: Actor, row: DeviceCredential) -> None:
    """The device's next request is refused; it must enrol again."""
    if DeviceCredential.objects.filter(pk=row.pk, revoked_at=None).update(
        revoked_at=timezone.now(), revoked_by_name=actor.name
    ):
        audit.record(
            actor,
            activity="Revoke device credential",
            category=CATEGORY,
            operation="update",
            resources=[
                audit.resource(
                    type="Device", id=str(row.device.device_id), name=row.device.name, scope=Device
                ),
                audit.resource(row, type="Device credential", name=f"key {row.key_fingerprint[:16]}"),
            ],
        )

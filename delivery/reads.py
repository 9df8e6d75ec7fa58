"""The reads of a device check-in, each compiled once (``portal.lib.lean.Query``)."""

from __future__ import annotations

from django.db.models import Value

from certs.models import Certificate
from connectors.models import ConnectorJob
from delivery.models import DeliveryState, Source
from directory.models import GroupDeviceMember, GroupUserMember
from portal.lib import lean

STATES = lean.Query(
    # With each row's job, less what a check-in never needs (the ciphertext is read when sent).
    # Intune's rows (source=intune) sit beside these and are never the device's own policy.
    lambda device_id: (
        DeliveryState.objects.filter(device_id=device_id, source=Source.PORTAL)
        .select_related("job")
        .defer("job__device_password", "job__device_public_key")
    ),
    int,
)
# The user's and the device's groups in one round trip.
GROUPS = lean.Query(
    lambda user_id, device_id: (
        GroupUserMember.objects.filter(user_id=user_id)
        .values_list(Value(True), "group_id")
        .union(
            GroupDeviceMember.objects.filter(device_id=device_id).values_list(Value(False), "group_id"),
            all=True,
        )
    ),
    int,
    int,
)
CERTIFICATES = lean.Query(
    lambda user_id: (
        Certificate.objects.filter(user_id=user_id)
        .select_related("encryption_key")
        .only(
            "pk", "thumbprint", "purpose", "not_before", "not_after", "user_id", "encryption_key__fingerprint"
        )
    ),
    int,
)
JOBS = lean.Query(
    lambda fingerprint: ConnectorJob.objects.filter(
        kind=ConnectorJob.Kind.DEVICE, to_fingerprint=fingerprint
    ).defer("device_password", "device_public_key"),
    str,
)
PFX = lean.Query(lambda pk: Certificate.objects.filter(pk=pk).values_list("pfx_blob", flat=True), int)
PASSWORD = lean.Query(
    lambda pk: ConnectorJob.objects.filter(pk=pk).values_list("device_password", flat=True), int
)

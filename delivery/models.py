"""Delivery to devices: device credentials, enrolment, and the one status model.

:class:`DeliveryState` is the only place a certificate's state on a device is kept: one row
per device x certificate x profile (and one per device x profile, thumbprint empty, for a
state that concerns no certificate in particular, such as Conflict or Not applicable).
Every report reads it; the profiles evaluation reads it through ``profiles.states``.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.utils import timezone

from certs.models import Certificate
from connectors.models import ConnectorJob
from directory.models import Device, DirectoryUser
from profiles.models import DeliveryStatus, Profile


class Source(models.TextChoices):
    """Where a state came from."""

    PORTAL = "portal", "Portal check-in"
    INTUNE = "intune", "Intune report"


class EnrollmentMethod(models.TextChoices):
    SECRET = "secret", "Tenant enrolment secret"
    TOKEN = "token", "Administrator-issued token"


class EnrollmentSecret(models.Model):
    """A tenant-wide secret devices enrol with (the demo fleet's, or a management tool's).

    Only its hash is kept; several may be active while one replaces another. Tenant-wide, like
    the directory (``RBAC_AREA``): the directory's permissions guard it.
    """

    RBAC_AREA: ClassVar[str] = "directory"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12)
    created_by_name = models.CharField(max_length=254)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.hint}…"


class DeviceEnrollmentToken(models.Model):
    """A one-time, expiring token an administrator issues for one directory device (devices are
    tenant-wide, like the directory: the token carries no scope tags)."""

    RBAC_AREA: ClassVar[str] = "directory"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="enrollment_tokens")
    created_by_name = models.CharField(max_length=254)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.hint}… for {self.device}"

    @property
    def state(self) -> str:
        """``used``, ``expired`` or ``unused`` (a cancelled token is deleted)."""
        if self.used_at is not None:
            return "used"
        return "expired" if self.expires_at <= timezone.now() else "unused"


class DeviceCredential(models.Model):
    """A device's identity: its own RSA public key and the hash of the bearer credential it was given.

    ``last_sequence`` is the highest report sequence accepted: a report must carry a greater one,
    so a replayed or reordered report changes nothing. Tenant-wide, like its directory device.
    """

    RBAC_AREA: ClassVar[str] = "directory"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="credentials")
    credential_hash = models.CharField(max_length=64, unique=True)
    public_key_pem = models.TextField()
    # SHA-256 of the SubjectPublicKeyInfo (DER), lower-case hex.
    key_fingerprint = models.CharField(max_length=64, db_index=True)
    key_size = models.PositiveIntegerField()
    method = models.CharField(max_length=10, choices=EnrollmentMethod.choices)
    agent_version = models.CharField(max_length=50, blank=True)
    enrolled_at = models.DateTimeField(default=timezone.now)
    enrolled_ip = models.GenericIPAddressField(null=True, blank=True)
    last_check_in = models.DateTimeField(null=True, blank=True)
    last_ip = models.GenericIPAddressField(null=True, blank=True)
    last_sequence = models.BigIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by_name = models.CharField(max_length=254, blank=True)

    class Meta:
        ordering = ["-enrolled_at", "-id"]
        # Devices > Enrolment lists credentials newest first, a page at a time, over every device.
        indexes = [models.Index(fields=["-enrolled_at", "-id"], name="device_credential_enrolled")]
        constraints = [
            # One live credential per device: enrolling again revokes the previous one.
            models.UniqueConstraint(
                fields=["device"], condition=Q(revoked_at__isnull=True), name="one_live_credential_per_device"
            )
        ]

    def __str__(self) -> str:
        return f"{self.device_id}: {self.key_fingerprint[:12]}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class DeliveryState(models.Model):
    """The state of one certificate of one profile on one device, and where it came from.

    ``certificate`` is kept as a thumbprint too: a deleted certificate's row outlives it (its
    foreign key turns null) so the device is told to remove it at its next check-in. An empty
    thumbprint is the device-level row (Conflict, Not applicable, a refusal before any
    certificate was chosen).
    """

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="delivery_states")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="delivery_states")
    user = models.ForeignKey(
        DirectoryUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="delivery_states"
    )
    certificate = models.ForeignKey(
        Certificate, null=True, blank=True, on_delete=models.SET_NULL, related_name="delivery_states"
    )
    certificate_thumbprint = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.CharField(max_length=1000, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PORTAL)
    # What the source said in its own words when it is not this portal (Intune's issuance and revoke
    # state, serial, issuer, expiry), shown beside the state.
    source_detail = models.CharField(max_length=300, blank=True)
    # The re-encryption of this certificate's password to the device's key (one per certificate x
    # device key, shared by the profiles that deliver the same certificate).
    job = models.ForeignKey(
        ConnectorJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="delivery_states"
    )
    # When the PFX and its re-encrypted password were last handed to the device.
    sent_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)  # when ``status`` last changed
    reported_at = models.DateTimeField(null=True, blank=True)  # when the device last reported on it
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["device_id", "profile_id", "certificate_thumbprint"]
        constraints = [
            models.UniqueConstraint(
                fields=["profile", "device", "certificate_thumbprint", "source"], name="unique_delivery_state"
            )
        ]
        indexes = [
            models.Index(fields=["profile", "status"], name="delivery_state_profile_status"),
            models.Index(fields=["device", "status"], name="delivery_state_device"),
            models.Index(fields=["user", "status"], name="delivery_state_user"),
            models.Index(fields=["certificate"], name="delivery_state_certificate"),
            models.Index(fields=["status", "error_code"], name="delivery_state_status_error"),
            # "Thumbprint starts with" on the tenant's certificates on devices (PostgreSQL: LIKE 'ab12%').
            models.Index(
                fields=["certificate_thumbprint"],
                name="delivery_state_thumbprint",
                opclasses=["varchar_pattern_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.profile_id} on {self.device_id} ({self.certificate_thumbprint[:8]}): {self.status}"


class FailureWatch(models.Model):
    """Whether a profile's failing devices are over the alert threshold, as last swept.

    An alert goes out when this flips (over, or back under), so one crossing makes one alert
    however many sweeps see it.
    """

    profile = models.OneToOneField(Profile, on_delete=models.CASCADE, related_name="failure_watch")
    over = models.BooleanField(default=False)
    failing = models.PositiveIntegerField(default=0)
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.profile_id}: {self.failing} failing{' (over)' if self.over else ''}"


class FailureAlert(models.Model):
    """One crossing of the install-failure threshold by a profile, to be alerted once."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="failure_alerts")
    over = models.BooleanField()  # True: crossed over the threshold; False: back under it
    failing = models.PositiveIntegerField()
    threshold = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    alert_claimed_at = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)
    alert_result = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.profile_id}: {'over' if self.over else 'under'} {self.threshold} ({self.failing})"

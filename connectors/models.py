"""Certificate connectors: enrolment, health, the keys they hold and the work they do.

Certificates and encryption keys live in ``certs``; rows here name them by key
fingerprint and certificate id, so the connector tables do not depend on the
certs migrations.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from portal.models import ScopeTagged, User

# Capabilities an agent may announce, as in the Intune connector set-up wizard.
FEATURES = {
    "pkcs_import": "PKCS imported certificates",
    "rewrap": "Key rotation (re-wrap passwords)",
    "device_reencrypt": "Re-encrypt to device keys",
}


def heartbeat_interval() -> int:
    return settings.CONNECTOR_HEARTBEAT_INTERVAL


def grace_period() -> int:
    return settings.CONNECTOR_GRACE_SECONDS


def down_after() -> int:
    return settings.CONNECTOR_DOWN_AFTER_SECONDS


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


class Status(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    UNKNOWN = "unknown", "Unknown"
    DISABLED = "disabled", "Disabled"
    REVOKED = "revoked", "Revoked"


STATUS_BADGES = {
    Status.HEALTHY: "ok",
    Status.WARNING: "warn",
    Status.ERROR: "err",
    Status.UNKNOWN: "",
    Status.DISABLED: "",
    Status.REVOKED: "err",
}


class Connector(ScopeTagged):
    """One enrolled agent. Its status is computed from timestamps, never stored as truth."""

    RBAC_AREA: ClassVar[str] = "connectors"

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        DISABLED = "disabled", "Disabled"
        REVOKED = "revoked", "Revoked"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    host_name = models.CharField("machine", max_length=255, blank=True)
    version = models.CharField(max_length=50, blank=True)
    features = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    credential_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    enrolled_at = models.DateTimeField(default=timezone.now)
    enrolled_ip = models.GenericIPAddressField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    last_ip = models.GenericIPAddressField(null=True, blank=True)
    last_self_tests = models.JSONField(default=list, blank=True)
    clock_skew_seconds = models.FloatField(null=True, blank=True)
    # The status last written as a StatusChange row; compared with the computed one.
    recorded_status = models.CharField(max_length=10, choices=Status.choices, default=Status.UNKNOWN)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.state == self.State.ACTIVE

    @property
    def self_tests_ok(self) -> bool:
        return all(bool(t.get("ok")) for t in self.last_self_tests if isinstance(t, dict))

    def version_supported(self) -> bool:
        minimum = settings.CONNECTOR_MIN_VERSION
        return not minimum or not self.version or _version_tuple(self.version) >= _version_tuple(minimum)

    def status(self, now: datetime | None = None) -> str:
        if self.state == self.State.REVOKED:
            return Status.REVOKED
        if self.state == self.State.DISABLED:
            return Status.DISABLED
        if self.last_seen is None:
            return Status.UNKNOWN
        age = ((now or timezone.now()) - self.last_seen).total_seconds()
        if age > down_after():
            return Status.ERROR
        if age > heartbeat_interval() + grace_period():
            return Status.WARNING
        if not self.version_supported() or not self.self_tests_ok:
            return Status.WARNING
        return Status.HEALTHY

    def status_reason(self, now: datetime | None = None) -> str:
        status = self.status(now)
        if status in (Status.REVOKED, Status.DISABLED):
            return f"{self.get_state_display()} by an administrator."
        if self.last_seen is None:
            return "Has not checked in yet."
        age = int(((now or timezone.now()) - self.last_seen).total_seconds())
        if status == Status.ERROR:
            return f"No check-in for {age} s."
        if age > heartbeat_interval() + grace_period():
            return f"Check-in late ({age} s ago)."
        if not self.version_supported():
            return f"Version {self.version} is older than the support window."
        failed = [str(t.get("name")) for t in self.last_self_tests if isinstance(t, dict) and not t.get("ok")]
        if failed:
            return "Self-test failed: " + ", ".join(failed)
        return "Checking in on time."

    def badge(self, now: datetime | None = None) -> str:
        return STATUS_BADGES.get(Status(self.status(now)), "")


class EnrollmentToken(ScopeTagged):
    """A one-time, expiring secret an agent trades for its own credential. Only its hash is kept."""

    RBAC_AREA: ClassVar[str] = "connectors"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text="The first characters, to tell tokens apart.")
    name = models.CharField(max_length=100, help_text="Name given to the connector that uses the token.")
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by_name = models.CharField(max_length=254)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    connector = models.ForeignKey(
        Connector, null=True, blank=True, on_delete=models.SET_NULL, related_name="enrollment_tokens"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.hint}… for {self.name}"


class Heartbeat(models.Model):
    """One check-in: what the agent reported about itself."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="heartbeats")
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    version = models.CharField(max_length=50, blank=True)
    host_name = models.CharField(max_length=255, blank=True)
    self_tests = models.JSONField(default=list, blank=True)
    clock_skew_seconds = models.FloatField(null=True, blank=True)
    pending_work = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["connector", "-received_at"])]

    def __str__(self) -> str:
        return f"{self.connector_id} {self.received_at:%Y-%m-%d %H:%M:%S}"

    @property
    def ok(self) -> bool:
        return all(bool(t.get("ok")) for t in self.self_tests if isinstance(t, dict))


class StatusChange(models.Model):
    """A real change of a connector's status. The alert sweep claims each row once."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="status_changes")
    old_status = models.CharField(max_length=10, choices=Status.choices)
    new_status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=300, blank=True)
    changed_at = models.DateTimeField(default=timezone.now, db_index=True)
    alert_claimed_at = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)
    alert_result = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.connector_id}: {self.old_status} → {self.new_status}"


class ConnectorEvent(models.Model):
    """The connector's event log, with event ids in the ranges Microsoft's connector uses."""

    ENROLLED = 1
    KEY_PUBLISHED = 10
    IMPORT_SUCCESS = 2000
    IMPORT_FAILURE = 2001
    REENCRYPT_SUCCESS = 2050
    REENCRYPT_RETRY = 2051
    REENCRYPT_FAILURE = 2052
    LEVELS = (("info", "Information"), ("warning", "Warning"), ("error", "Error"))

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="events")
    event_id = models.PositiveIntegerField()
    level = models.CharField(max_length=10, choices=LEVELS, default="info")
    message = models.CharField(max_length=500)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.message}"


class ConnectorKey(models.Model):
    """A public key a connector published: it holds the private half in its key store."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="keys")
    provider_name = models.CharField(max_length=200)
    key_name = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64, db_index=True)
    size = models.PositiveIntegerField()
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["provider_name", "key_name"]
        constraints = [
            models.UniqueConstraint(fields=["connector", "fingerprint"], name="one_row_per_connector_key")
        ]

    def __str__(self) -> str:
        return f"{self.provider_name} / {self.key_name}"


class KeyRotation(ScopeTagged):
    """Re-wrapping every certificate password from one key to another, done by connectors."""

    RBAC_AREA: ClassVar[str] = "connectors"

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Finished"
        FAILED = "failed", "Finished with failures"
        CANCELLED = "cancelled", "Cancelled"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    from_fingerprint = models.CharField(max_length=64)
    to_fingerprint = models.CharField(max_length=64)
    from_label = models.CharField(max_length=410)
    to_label = models.CharField(max_length=410)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    total = models.PositiveIntegerField(default=0)
    created_by_name = models.CharField(max_length=254)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_label} → {self.to_label}"


class ConnectorJob(models.Model):
    """One unit of connector work. Claimed by exactly one connector with a conditional UPDATE."""

    class Kind(models.TextChoices):
        REWRAP = "rewrap", "Re-wrap password to another key"
        DEVICE = "device", "Re-encrypt password to a device key"

    class State(models.TextChoices):
        QUEUED = "queued", "Waiting for a connector"
        CLAIMED = "claimed", "In progress"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    MAX_ATTEMPTS = 3

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REWRAP)
    rotation = models.ForeignKey(
        KeyRotation, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    certificate_id = models.BigIntegerField(db_index=True)
    from_fingerprint = models.CharField(max_length=64, db_index=True)
    to_fingerprint = models.CharField(max_length=64, blank=True)
    device_public_key = models.TextField(blank=True)
    # Device jobs: the credential whose key ``to_fingerprint`` names (an id, as certificates are),
    # and the password encrypted to that key by the connector: ciphertext only, for that device.
    device_credential_id = models.BigIntegerField(null=True, blank=True)
    device_password = models.BinaryField(default=b"", blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    claimed_by = models.ForeignKey(
        Connector, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["state", "from_fingerprint"]),
            # A device's jobs, by its key: what a check-in waits for.
            models.Index(fields=["to_fingerprint", "finished_at"], name="connector_job_to_key"),
        ]
        constraints = [
            # Queuing a device's certificate twice (two check-ins at once) finds the same job.
            models.UniqueConstraint(
                fields=["certificate_id", "to_fingerprint"],
                condition=Q(kind="device"),
                name="one_device_job_per_certificate_and_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


def claim_timeout() -> timedelta:
    """A claim older than this belongs to a connector that died; another may take the job."""
    return timedelta(seconds=settings.CONNECTOR_JOB_TIMEOUT_SECONDS)

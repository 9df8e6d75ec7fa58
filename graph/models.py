"""The tenant's Graph connection, and what the portal knows about Intune's copy of each certificate."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal.lib.runs import Run


def default_write_limit() -> int:
    return settings.GRAPH_WRITE_LIMIT


def default_write_window() -> float:
    return settings.GRAPH_WRITE_WINDOW_SECONDS


class TenantConnection(models.Model):
    """The one app registration the portal signs in with. Its credential is encrypted; the key is not in the database."""

    class Cloud(models.TextChoices):
        GLOBAL = "global", "Global (commercial, GCC)"
        USGOV = "usgov", "US Government (GCC High, DoD)"

    class Credential(models.TextChoices):
        SECRET = "secret", "Client secret"
        CERTIFICATE = "certificate", "Certificate"

    SINGLETON = 1

    tenant_id = models.CharField("tenant id", max_length=100)
    client_id = models.CharField("application (client) id", max_length=100)
    cloud = models.CharField(max_length=10, choices=Cloud.choices, default=Cloud.GLOBAL)
    credential_kind = models.CharField(max_length=12, choices=Credential.choices, default=Credential.SECRET)
    credential_encrypted = models.BinaryField(editable=False)
    certificate_thumbprint = models.CharField(max_length=64, blank=True)
    credential_set_at = models.DateTimeField(null=True, blank=True)
    # Only for a local emulator or a test tenant: endpoints instead of the cloud's, and the CA they use.
    authority_url = models.URLField("sign-in endpoint", blank=True)
    graph_url = models.URLField("Graph endpoint", blank=True)
    ca_certificate = models.TextField("trusted CA certificate (PEM)", blank=True)
    # Writes (POST/PATCH/DELETE) all workers together start per window; Intune documents 100 per 20 s
    # per app and tenant, 200 per tenant for all apps.
    write_limit = models.PositiveIntegerField(default=default_write_limit, help_text="0: no pacing.")
    write_window_seconds = models.FloatField(default=default_write_window)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by_name = models.CharField(max_length=254, blank=True)
    tested_at = models.DateTimeField(null=True, blank=True)
    test_ok = models.BooleanField(null=True)
    test_result = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(pk=1), name="one_tenant_connection")]

    def __str__(self) -> str:
        return f"Tenant {self.tenant_id}"

    @classmethod
    def current(cls) -> TenantConnection | None:
        return cls.objects.filter(pk=cls.SINGLETON).first()

    @property
    def is_custom(self) -> bool:
        return bool(self.authority_url or self.graph_url)


class UploadRecord(models.Model):
    """Intune's copy of one certificate: its Graph id, whether it is there, and who is working on it.

    The row outlives the certificate, so a deletion in the portal can still be carried out in Intune.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Upload queued"
        SYNCED = "synced", "In Intune"
        FAILED = "failed", "Upload failed"
        DELETING = "deleting", "Deletion queued"
        DELETED = "deleted", "Deleted from Intune"
        DELETE_FAILED = "delete_failed", "Deletion failed"
        ADOPTED = "adopted", "In Intune only (adopted)"
        RESEND = "resend", "Password re-wrapped, to be re-sent"

    graph_id = models.CharField(max_length=100, unique=True)
    certificate = models.OneToOneField(
        "certs.Certificate", null=True, blank=True, on_delete=models.SET_NULL, related_name="graph_upload"
    )
    upn = models.CharField(max_length=255)
    thumbprint = models.CharField(max_length=40)
    state = models.CharField(max_length=15, choices=State.choices, default=State.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    claim = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    synced_at = models.DateTimeField(null=True, blank=True)
    error = models.JSONField(default=dict, blank=True)
    read_back = models.JSONField(default=dict, blank=True)
    # The encryption key Intune's copy of the password is wrapped to (SHA-256 fingerprint).
    key_fingerprint = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta:
        ordering = ["-queued_at"]
        indexes = [models.Index(fields=["state", "claimed_at"])]

    def __str__(self) -> str:
        return self.graph_id


class ReconcileRun(Run):
    """One comparison of every userPfxCertificate in Intune with the portal's certificates."""

    class Meta(Run.Meta):
        pass

    def __str__(self) -> str:
        return f"Reconcile {self.started_at:%Y-%m-%d %H:%M}"


class ReconcileFinding(models.Model):
    class Kind(models.TextChoices):
        MISSING = "missing", "Missing in Intune"
        ONLY_IN_INTUNE = "only_in_intune", "Only in Intune"
        MISMATCH = "mismatch", "Fields differ"

    class Resolution(models.TextChoices):
        OPEN = "", "Open"
        REUPLOADED = "reuploaded", "Uploaded again"
        ADOPTED = "adopted", "Adopted"
        DELETED = "deleted", "Deleted from Intune"

    class Subject(models.TextChoices):
        CERTIFICATE = "certificate", "Certificate"
        PROFILE = "profile", "Profile"

    run = models.ForeignKey(ReconcileRun, on_delete=models.CASCADE, related_name="findings")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    subject = models.CharField(max_length=12, choices=Subject.choices, default=Subject.CERTIFICATE)
    # For a profile finding: the portal's record of that profile in Intune (None: only in Intune).
    profile_record = models.ForeignKey(
        "graph.ProfileRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    graph_id = models.CharField(max_length=100)
    certificate = models.ForeignKey(
        "certs.Certificate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    upn = models.CharField(max_length=255, blank=True)
    thumbprint = models.CharField(max_length=40, blank=True)
    differences = models.JSONField(default=list, blank=True)
    intune = models.JSONField(default=dict, blank=True)
    resolution = models.CharField(
        max_length=12, choices=Resolution.choices, default=Resolution.OPEN, blank=True
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by_name = models.CharField(max_length=254, blank=True)

    class Meta:
        ordering = ["kind", "upn"]
        constraints = [models.UniqueConstraint(fields=["run", "graph_id"], name="one_finding_per_record")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.graph_id}"


class SyncRun(Run):
    """One directory sync: users, groups with members, and managed devices."""

    class Meta(Run.Meta):
        pass

    def __str__(self) -> str:
        return f"Directory sync {self.started_at:%Y-%m-%d %H:%M}"


class ProfileRecord(models.Model):
    """Intune's copy of one profile (a deviceConfiguration): its Graph id, whether it matches the
    portal's, and who is working on it. It outlives the profile, so a deletion reaches Intune."""

    class State(models.TextChoices):
        QUEUED = "queued", "Changed here, not yet sent"
        SYNCED = "synced", "In Intune"
        FAILED = "failed", "Failed"
        DELETING = "deleting", "Deletion queued"
        DELETED = "deleted", "Deleted from Intune"
        DELETE_FAILED = "delete_failed", "Deletion failed"
        ADOPTED = "adopted", "In Intune only (adopted)"

    profile = models.OneToOneField(
        "profiles.Profile", null=True, blank=True, on_delete=models.SET_NULL, related_name="intune_record"
    )
    name = models.CharField(max_length=200)
    graph_type = models.CharField(max_length=80)
    # Empty until Intune has answered the POST with the id it chose.
    graph_id = models.CharField(max_length=100, blank=True, db_index=True)
    # Set before each POST: a POST whose answer never came may have created the configuration.
    create_sent_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=15, choices=State.choices, default=State.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    # Raised by every change in the portal: a worker that sent an older revision leaves it queued.
    revision = models.PositiveIntegerField(default=0)
    claim = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    synced_at = models.DateTimeField(null=True, blank=True)
    error = models.JSONField(default=dict, blank=True)
    read_back = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["state", "claimed_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.graph_id or 'not in Intune'})"


class IntuneConnector(models.Model):
    """A certificate connector Intune knows (certificateConnectorDetails, or the older ndesConnectors),
    as last read from Graph, with the health the portal's rules give it."""

    class Kind(models.TextChoices):
        CERTIFICATE = "certificate", "Certificate Connector for Microsoft Intune"
        NDES = "ndes", "NDES connector (legacy)"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    graph_id = models.CharField(max_length=100)
    name = models.CharField(max_length=255, blank=True)
    machine = models.CharField(max_length=255, blank=True)
    version = models.CharField(max_length=50, blank=True)
    last_check_in = models.DateTimeField(null=True, blank=True)
    enrolled_at = models.DateTimeField(null=True, blank=True)
    # ndesConnectorState (none, active, inactive); empty for certificate connectors.
    intune_state = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=10, default="unknown")
    status_reason = models.CharField(max_length=300, blank=True)
    read_at = models.DateTimeField(default=timezone.now)
    # Still listed by Intune at the last read.
    listed = models.BooleanField(default=True)

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "graph_id"], name="one_row_per_intune_connector")
        ]

    def __str__(self) -> str:
        return self.name or self.graph_id


class StatusSyncRun(Run):
    """One read of what Intune reports about the portal's profiles, into the delivery status model."""

    class Meta(Run.Meta):
        pass

    def __str__(self) -> str:
        return f"Intune status sync {self.started_at:%Y-%m-%d %H:%M}"


class IntuneProfileStatus(models.Model):
    """What Intune last said about one profile as a whole: its overview counts, its users' states, and
    how many reported devices and certificates the portal could not match (counted, never invented)."""

    profile = models.OneToOneField("profiles.Profile", on_delete=models.CASCADE, related_name="intune_status")
    overview = models.JSONField(default=dict, blank=True)
    users = models.JSONField(default=dict, blank=True)  # complianceStatus -> number of users
    devices_reported = models.PositiveIntegerField(default=0)
    certificates_reported = models.PositiveIntegerField(default=0)
    unknown_devices = models.PositiveIntegerField(default=0)
    unknown_certificates = models.PositiveIntegerField(default=0)
    synced_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.profile_id}: {self.devices_reported} devices at {self.synced_at:%Y-%m-%d %H:%M}"

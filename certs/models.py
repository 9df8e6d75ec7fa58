"""Encryption keys, imported certificates, import batches and their items, expiry reminders."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower, Now
from django.utils import timezone

from directory.models import DirectoryUser, not_in_entra
from portal.models import ScopeTagged, User


class Purpose(models.TextChoices):
    UNASSIGNED = "unassigned", "Unassigned"
    SMIME_ENCRYPTION = "smimeEncryption", "S/MIME encryption"
    SMIME_SIGNING = "smimeSigning", "S/MIME signing"


class Padding(models.TextChoices):
    OAEP_SHA512 = "oaepSha512", "OAEP SHA-512"
    OAEP_SHA384 = "oaepSha384", "OAEP SHA-384"
    OAEP_SHA256 = "oaepSha256", "OAEP SHA-256"


class EncryptionKey(ScopeTagged):
    """A connector's RSA public key; PFX passwords are encrypted to it before they reach Intune."""

    RBAC_AREA: ClassVar[str] = "connectors"

    class Source(models.TextChoices):
        UPLOAD = "upload", "Uploaded"
        CONNECTOR = "connector", "Published by a connector"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    provider_name = models.CharField(max_length=200)
    key_name = models.CharField(max_length=200)
    size = models.PositiveIntegerField()
    fingerprint = models.CharField("SHA-256 fingerprint", max_length=64, unique=True)
    public_key_pem = models.TextField()
    default_padding = models.CharField(max_length=20, choices=Padding.choices, default=Padding.OAEP_SHA512)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.UPLOAD)
    is_default = models.BooleanField(default=False)
    # Set once a connector of this portal signs the key statement with the private key. Only then may
    # passwords be re-wrapped to the key: a key added by hand may belong to whoever added it.
    possession_proven_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-is_default", "provider_name", "key_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_encryption_key"
            ),
            models.UniqueConstraint(fields=["provider_name", "key_name"], name="unique_provider_key_name"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_name} / {self.key_name}"

    @property
    def possession_proven(self) -> bool:
        return self.possession_proven_at is not None


class GraphState(models.TextChoices):
    NOT_UPLOADED = "not_uploaded", "Stored, not uploaded"
    PENDING = "pending", "Upload pending"
    SYNCED = "synced", "In Intune"
    FAILED = "failed", "Upload failed"


class Certificate(ScopeTagged):
    """A user's PFX, ready for Intune: the file as given and its password encrypted for the connector."""

    RBAC_AREA: ClassVar[str] = "certificates"
    # Visible to whoever may see its user (users are tenant-wide), whatever tags its import gave it;
    # changing or deleting it still needs a write permission over one of its tags.
    RBAC_READ_THROUGH: ClassVar[str] = "directory.read"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(DirectoryUser, on_delete=models.PROTECT, related_name="certificates")
    upn = models.CharField("user principal name", max_length=255)
    thumbprint = models.CharField(max_length=40)
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.UNASSIGNED)
    subject = models.CharField(max_length=1000)
    issuer = models.CharField(max_length=1000)
    serial = models.CharField(max_length=100)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    key_type = models.CharField(max_length=20)
    key_size = models.PositiveIntegerField(null=True, blank=True)
    # SHA-256 of the SubjectPublicKeyInfo: finds another user's certificate for the same key pair.
    # Empty for a certificate stored before it was recorded whose file hides its certificates
    # behind the password (nothing to read it from without the password).
    key_fingerprint = models.CharField("public key SHA-256", max_length=64, blank=True, default="")
    encryption_key = models.ForeignKey(EncryptionKey, on_delete=models.PROTECT, related_name="certificates")
    padding = models.CharField(max_length=20, choices=Padding.choices)
    pfx_blob = models.BinaryField()
    encrypted_password = models.BinaryField()
    batch = models.ForeignKey(
        "ImportBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="certificates"
    )
    graph_state = models.CharField(max_length=20, choices=GraphState.choices, default=GraphState.NOT_UPLOADED)
    graph_error = models.CharField(max_length=500, blank=True)
    graph_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["upn", "-not_after"]
        constraints = [
            models.UniqueConstraint(
                Lower("upn"), "thumbprint", "purpose", name="unique_upn_thumbprint_purpose"
            )
        ]
        indexes = [
            models.Index(fields=["user", "-not_after"]),
            # One per ordering of the certificate list (certs.forms.CertificateFilterForm.SORTS),
            # so a page reads its rows along an index instead of sorting the table; the first
            # also serves every expiry window and count.
            models.Index(fields=["not_after", "upn"]),
            models.Index(fields=["upn", "-not_after"]),
            models.Index(fields=["issuer", "upn"]),
            models.Index(fields=["purpose", "upn"]),
            models.Index(fields=["created_at", "upn"]),
            models.Index(fields=["key_fingerprint"], name="certificate_key_fingerprint"),
        ]

    def __str__(self) -> str:
        return f"{self.upn} {self.thumbprint[:12]}"

    @property
    def is_expired(self) -> bool:
        return self.not_after <= timezone.now()

    @property
    def days_left(self) -> int:
        return (self.not_after - timezone.now()).days

    @property
    def expiry_badge(self) -> str:
        days = self.days_left
        if self.is_expired:
            return "err"
        return "warn" if days < 30 else "ok"

    @property
    def key_label(self) -> str:
        return f"{self.key_type.upper()} {self.key_size}" if self.key_size else self.key_type.upper()


class ImportBatch(ScopeTagged):
    """One import run: a single file, a bulk upload or a command-line manifest."""

    RBAC_AREA: ClassVar[str] = "certificates"

    class Kind(models.TextChoices):
        SINGLE = "single", "Single file"
        BULK = "bulk", "Bulk upload"
        COMMAND = "command", "Command line"

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Finished"
        CANCELLED = "cancelled", "Cancelled"

    class OnDuplicate(models.TextChoices):
        SKIP = "skip", "Skip certificates already imported"
        UPDATE = "update", "Update certificates already imported"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    dry_run = models.BooleanField(default=False)
    on_duplicate = models.CharField(max_length=10, choices=OnDuplicate.choices, default=OnDuplicate.SKIP)
    encryption_key = models.ForeignKey(EncryptionKey, on_delete=models.PROTECT, related_name="batches")
    padding = models.CharField(max_length=20, choices=Padding.choices, default=Padding.OAEP_SHA512)
    total = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by_name = models.CharField(max_length=254)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The dry run whose files and passwords this import reused (at most one import per dry run).
    promoted_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="promotion"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "import batch"
        verbose_name_plural = "import batches"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.created_at:%Y-%m-%d %H:%M} ({self.total} files)"

    def users_not_in_entra(self) -> int:
        """How many certificates this import stored for users Intune does not know (held, not uploaded)."""
        return self.certificates.filter(not_in_entra("user__")).count()

    @property
    def retry_deadline(self) -> datetime | None:
        """When the files kept for a retry are deleted (None while the batch runs)."""
        if self.finished_at is None:
            return None
        return self.finished_at + timedelta(days=settings.CERTS_RETRY_WINDOW_DAYS)

    @property
    def retry_open(self) -> bool:
        """Whether failed rows can still be retried: a dry run keeps no files, and files go at the deadline."""
        deadline = self.retry_deadline
        return not self.dry_run and (deadline is None or timezone.now() < deadline)


class ItemState(models.TextChoices):
    QUEUED = "queued", "Queued"
    VALIDATED = "validated", "Validated"
    ENCRYPTED = "encrypted", "Encrypted"
    STORED = "stored", "Stored"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


# An item in one of these states has no more work to do (a dry run ends at "validated").
FINAL_STATES = (ItemState.STORED, ItemState.FAILED, ItemState.SKIPPED, ItemState.CANCELLED)

# Failures that a retry with the password can turn into a stored certificate: the password was
# wrong or unusable, it was never tried (the row was cancelled, its worker failed, its staged copy
# was lost), or the user has been added to the directory since. Only these rows keep their file,
# and only until the batch's retry window ends; no password makes a damaged file, a file that is
# not a PFX or an expired certificate importable, so the batch page offers no password box for them.
RETRYABLE_PROBLEMS = frozenset(
    {
        "wrong_password",
        "password_not_ascii",
        "password_too_long",
        "staging_failed",
        "internal_error",
        "worker_lost",
        "cancelled",
        "unknown_user",
        "no_upn",
    }
)


def retryable_with_password() -> models.Q:
    """Rows of a finished batch that a password typed on the batch page can still make succeed."""
    retryable = models.Q(state=ItemState.CANCELLED) | models.Q(
        state=ItemState.FAILED, problem_code__in=RETRYABLE_PROBLEMS
    )
    return retryable & ~models.Q(pfx=b"")


class ImportItem(models.Model):
    """One file of a batch. Its password waits here only as staging ciphertext, and only until done."""

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    filename = models.CharField(max_length=255)
    upn = models.CharField(max_length=255, blank=True, help_text="Empty: taken from the certificate.")
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.UNASSIGNED)
    state = models.CharField(max_length=10, choices=ItemState.choices, default=ItemState.QUEUED)
    done = models.BooleanField(default=False)
    pfx = models.BinaryField(blank=True, default=b"")
    staged_password = models.BinaryField(null=True, blank=True)
    claim = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Database defaults: the bulk insert (COPY on PostgreSQL) names only the columns it fills.
    queued_at = models.DateTimeField(db_default=Now())
    lost_claims = models.PositiveSmallIntegerField(
        db_default=0, help_text="How often a worker stopped while it held this row."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    problem_code = models.CharField(max_length=50, blank=True)
    problem_message = models.CharField(max_length=1000, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    thumbprint = models.CharField(max_length=40, blank=True)
    subject = models.CharField(max_length=1000, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    certificate = models.ForeignKey(
        Certificate, null=True, blank=True, on_delete=models.SET_NULL, related_name="import_items"
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "position"]
        constraints = [models.UniqueConstraint(fields=["batch", "position"], name="unique_item_position")]
        indexes = [
            models.Index(fields=["batch", "state"]),
            models.Index(fields=["batch", "done"]),
            # The sweeps look only at unfinished rows and at rows still holding a file: both few.
            models.Index(
                fields=["claimed_at", "queued_at"], condition=models.Q(done=False), name="item_unfinished"
            ),
            models.Index(fields=["batch"], condition=~models.Q(pfx=b""), name="item_with_file"),
        ]

    def __str__(self) -> str:
        return self.filename

    @property
    def retryable(self) -> bool:
        """A finished row that a retry with its password could still store (its file is kept for it)."""
        return (
            self.state in (ItemState.FAILED, ItemState.CANCELLED) and self.problem_code in RETRYABLE_PROBLEMS
        )


class ExpiryReminder(models.Model):
    """A reminder sent once per certificate and threshold (30, 14, 7, 1 days)."""

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="reminders")
    days = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["certificate", "days"], name="one_reminder_per_threshold")
        ]

    def __str__(self) -> str:
        return f"{self.certificate} {self.days} days"


def stale_claim_cutoff(now: datetime | None = None) -> datetime:
    """Claims older than this belong to a worker that died (their lease ran out); the rows may be claimed again."""
    return (now or timezone.now()) - timedelta(seconds=settings.CERTS_CLAIM_LEASE_SECONDS)

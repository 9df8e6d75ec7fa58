"""API tokens, the Entra ID applications trusted to call the API, and the import drop folders."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.db import models
from django.utils import timezone

from certs.models import EncryptionKey, ImportBatch
from portal.models import ScopeTagged, User


class ApiToken(models.Model):
    """A secret an admin made for scripts: it acts with exactly that admin's roles and scope tags.

    Only a SHA-256 of the secret is stored (the secret is 256 random bits, so a slow hash adds
    nothing); the secret is shown once, when the token is created.
    """

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # The first characters of the secret, shown in lists so an admin can tell tokens apart.
    prefix = models.CharField(max_length=16)
    secret_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="unique_api_token_name")]

    def __str__(self) -> str:
        return f"API token {self.name}"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now() and self.user.is_active


class EntraApplication(models.Model):
    """An Entra ID application (client id) an admin trusts to call the API with its own app tokens.

    Calls carrying a valid token of that application act with the roles and scope tags of the admin
    who added it, like an API token; the admin's account going away or being disabled stops them.
    """

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="entra_applications")
    name = models.CharField(max_length=100)
    client_id = models.UUIDField(unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"Entra application {self.name}"


class DropFolder(ScopeTagged):
    """An import profile watched for complete sets of files: see ``api.dropfolder``."""

    RBAC_AREA: ClassVar[str] = "certificates"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100, unique=True)
    # The folder is API_DROP_ROOT/<directory> on the server the workers run on.
    directory = models.SlugField(max_length=100, unique=True)
    encryption_key = models.ForeignKey(EncryptionKey, on_delete=models.PROTECT, related_name="+")
    on_duplicate = models.CharField(
        max_length=10, choices=ImportBatch.OnDuplicate.choices, default=ImportBatch.OnDuplicate.SKIP
    )
    # The admin the imports act for (their roles and tags decide what the folder may import).
    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When a worker last looked at the folder, and what stopped it, if anything (its directory missing).
    scanned_at = models.DateTimeField(null=True, blank=True)
    scan_problem = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DropSet(models.Model):
    """One complete set found in a drop folder: the row that makes importing it happen exactly once."""

    class State(models.TextChoices):
        IMPORTING = "importing", "Importing"
        DONE = "done", "Done"
        REFUSED = "refused", "Refused"

    folder = models.ForeignKey(DropFolder, on_delete=models.CASCADE, related_name="sets")
    name = models.CharField(max_length=255)
    state = models.CharField(max_length=10, choices=State.choices, default=State.IMPORTING)
    batch = models.ForeignKey(ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    problem_code = models.CharField(max_length=50, blank=True)
    problem_message = models.CharField(max_length=1000, blank=True)
    found_at = models.DateTimeField(default=timezone.now)
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-found_at"]
        constraints = [models.UniqueConstraint(fields=["folder", "name"], name="one_drop_set_per_name")]

    def __str__(self) -> str:
        return f"{self.folder.name}/{self.name}"

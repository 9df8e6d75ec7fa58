from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.db import models

from portal import rbac


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create(email, password, **extra)


class User(AbstractUser):
    """An administrator of the portal (not a user of the tenant directory)."""

    username = None  # type: ignore[assignment]
    email = models.EmailField("e-mail address", unique=True)
    display_name = models.CharField(max_length=200, blank=True)
    invited_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.display_name or self.email

    @property
    def label(self) -> str:
        return self.display_name or self.email


class ScopeTag(models.Model):
    DEFAULT_NAME = "Default"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=500, blank=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_tag"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def default(cls) -> ScopeTag:
        tag, _ = cls.objects.get_or_create(
            is_default=True,
            defaults={"name": cls.DEFAULT_NAME, "description": "Given to objects with no other tag."},
        )
        return tag


class Role(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    key = models.SlugField(
        max_length=60, unique=True, null=True, blank=True, help_text="Set on built-in roles."
    )
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=500, blank=True)
    permissions = models.JSONField(default=list)
    requires_mfa = models.BooleanField(
        default=False, help_text="Members must sign in with an authenticator app (TOTP)."
    )
    is_built_in = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_built_in", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not isinstance(self.permissions, list) or not all(isinstance(p, str) for p in self.permissions):
            raise ValidationError({"permissions": "Permissions must be a list of names."})
        unknown = [p for p in self.permissions if not rbac.is_permission(p)]
        if unknown:
            raise ValidationError({"permissions": f"Unknown permissions: {', '.join(unknown)}"})


class RoleAssignment(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="assignments")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    members = models.ManyToManyField(User, related_name="role_assignments", blank=True)
    # No tags means the members see every object, as in Intune.
    scope_tags = models.ManyToManyField(ScopeTag, related_name="role_assignments", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["role__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["role", "name"], name="unique_assignment_name_per_role")
        ]

    def __str__(self) -> str:
        return f"{self.role.name}: {self.name}"


class ScopeTagged(models.Model):
    """Mixin for objects that carry scope tags (certificates, profiles, connectors, keys)."""

    scope_tags = models.ManyToManyField(ScopeTag, related_name="+", blank=True)

    RBAC_AREA: ClassVar[str] = ""
    # A permission of the area these objects belong to: whoever holds it over every object
    # (and holds this area's read) reads them all, whatever their tags. See portal.access.
    RBAC_READ_THROUGH: ClassVar[str] = ""

    class Meta:
        abstract = True


# Events naming more objects than this show a count per type in lists, not every name.
SUMMARY_NAMES = 3


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise PermissionError("The audit log is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("The audit log is append-only")


class AuditEvent(models.Model):
    """One change made in the portal, written in the same transaction as the change."""

    class Result(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"

    class Operation(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"
        ACTION = "action", "Action"

    class ActorType(models.TextChoices):
        USER = "user", "User"
        SYSTEM = "system", "System"
        CONNECTOR = "connector", "Connector"
        APPLICATION = "application", "Application"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # No database constraint: the row must outlive the account, and nothing may rewrite it.
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    actor_type = models.CharField(max_length=20, choices=ActorType.choices, default=ActorType.USER)
    actor_name = models.CharField(max_length=254, help_text="E-mail or name at the time of the change.")
    actor_ip = models.GenericIPAddressField(null=True, blank=True)
    activity = models.CharField(max_length=200, db_index=True)
    operation = models.CharField(max_length=10, choices=Operation.choices)
    category = models.CharField(max_length=50, db_index=True)
    result = models.CharField(max_length=10, choices=Result.choices, default=Result.SUCCESS)
    correlation_id = models.UUIDField(db_index=True)
    # [{"type", "id", "name", "changes": [{"field", "old", "new"}]}]
    resources = models.JSONField(default=list)
    # Who may read the event, from the tagged objects it names, as they were when it was written
    # (portal.audit.record; read by portal.access.audit_events). Blank area: tenant-wide.
    # NULL on events written before scopes were stored. Nullable without defaults so adding
    # them alters the table in place and keeps the append-only triggers.
    scope_area = models.CharField(max_length=100, null=True, blank=True)
    scope_tags = models.JSONField(null=True, blank=True, help_text="Tag id -> tag name.")
    scope_through = models.CharField(max_length=50, null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["category", "-occurred_at"])]

    def __str__(self) -> str:
        return f"{self.activity} by {self.actor_name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("The audit log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("The audit log is append-only")

    @property
    def resource_names(self) -> str:
        return ", ".join(str(r.get("name", "")) for r in self._resources())

    @property
    def summarised(self) -> bool:
        return len(self._resources()) > SUMMARY_NAMES

    @property
    def resource_summary(self) -> str:
        """The targets in a line: their names when few, else a count per type ("66 Certificates")."""
        resources = self._resources()
        if not self.summarised:
            return self.resource_names
        counts: dict[str, int] = {}
        for r in resources:
            kind = str(r.get("type") or "Object")
            counts[kind] = counts.get(kind, 0) + 1
        return ", ".join(f"{n} {_plural(kind) if n != 1 else kind}" for kind, n in counts.items())

    def _resources(self) -> list[dict[str, Any]]:
        return [r for r in self.resources if isinstance(r, dict)]

"""PKCS imported certificate profiles: settings, assignments, applicability rules, delivery states."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower

from directory.models import Group, Platform, WindowsEdition, version_key
from portal.models import ScopeTagged


class ProfileType(models.TextChoices):
    PKCS_IMPORTED = "pkcsImportedCertificate", "PKCS imported certificate"


class IntendedPurpose(models.TextChoices):
    """Graph ``userPfxIntendedPurpose``, limited to what Intune offers for imported PKCS profiles."""

    UNASSIGNED = "unassigned", "Unassigned"
    SMIME_ENCRYPTION = "smimeEncryption", "S/MIME encryption"
    SMIME_SIGNING = "smimeSigning", "S/MIME signing"


class KeyStorageProvider(models.TextChoices):
    """Windows only; Graph ``keyStorageProviderOption``."""

    TPM_OTHERWISE_SOFTWARE = (
        "useTpmKspOtherwiseUseSoftwareKsp",
        "Enroll to Trusted Platform Module (TPM) KSP if present, otherwise Software KSP",
    )
    TPM_OTHERWISE_FAIL = (
        "useTpmKspOtherwiseFail",
        "Enroll to Trusted Platform Module (TPM) KSP, otherwise fail",
    )
    PASSPORT_OTHERWISE_FAIL = (
        "usePassportForWorkKspOtherwiseFail",
        "Enroll to Passport, otherwise fail (Windows 10 and later)",
    )
    SOFTWARE = "useSoftwareKsp", "Enroll to Software KSP"


class CertificateAccess(models.TextChoices):
    """Android Enterprise fully managed only; Graph ``certificateAccessType``."""

    USER_APPROVAL = "userApproval", "Require user approval for apps"
    SPECIFIC_APPS = "specificApps", "Grant silently for specific apps"


# The Graph @odata.type each platform's profile has in Intune.
GRAPH_TYPES: dict[str, str] = {
    Platform.ANDROID_DEVICE_ADMIN: "androidImportedPFXCertificateProfile",
    Platform.ANDROID_FULLY_MANAGED: "androidDeviceOwnerImportedPFXCertificateProfile",
    Platform.ANDROID_WORK_PROFILE: "androidForWorkImportedPFXCertificateProfile",
    Platform.IOS: "iosImportedPFXCertificateProfile",
    Platform.MACOS: "macOSImportedPFXCertificateProfile",
    Platform.WINDOWS: "windows10ImportedPFXCertificateProfile",
}


class Profile(ScopeTagged):
    RBAC_AREA: ClassVar[str] = "profiles"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    description = models.CharField(max_length=1000, blank=True)
    platform = models.CharField(max_length=40, choices=Platform.choices)
    profile_type = models.CharField(
        max_length=40, choices=ProfileType.choices, default=ProfileType.PKCS_IMPORTED
    )
    # Read-only after creation, as in Intune: to change them, create a new profile.
    intended_purpose = models.CharField(max_length=30, choices=IntendedPurpose.choices)
    key_storage_provider = models.CharField(max_length=40, choices=KeyStorageProvider.choices, blank=True)
    certificate_access = models.CharField(max_length=20, choices=CertificateAccess.choices, blank=True)
    silent_access_packages = models.JSONField(default=list, blank=True)
    # The virtual groups.
    all_users = models.BooleanField("All users", default=False)
    all_devices = models.BooleanField("All devices", default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="unique_profile_name_ci")]

    def __str__(self) -> str:
        return self.name

    @property
    def graph_type(self) -> str:
        return GRAPH_TYPES.get(self.platform, "")

    @property
    def is_windows(self) -> bool:
        return self.platform == Platform.WINDOWS

    @property
    def has_certificate_access(self) -> bool:
        return self.platform == Platform.ANDROID_FULLY_MANAGED

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.platform == Platform.WINDOWS and not self.key_storage_provider:
            errors["key_storage_provider"] = "Choose a key storage provider."
        if self.platform == Platform.ANDROID_FULLY_MANAGED:
            if not self.certificate_access:
                errors["certificate_access"] = "Choose how apps get access to the certificate."
            elif (
                self.certificate_access == CertificateAccess.SPECIFIC_APPS and not self.silent_access_packages
            ):
                errors["silent_access_packages"] = "List at least one app package to grant access silently."
        if errors:
            raise ValidationError(errors)

    def settings_key(self) -> tuple[str, str, tuple[str, ...]]:
        """What must agree between two profiles of one purpose and platform for them not to conflict."""
        return (
            self.key_storage_provider,
            self.certificate_access,
            tuple(sorted(self.silent_access_packages or [])),
        )


class ProfileAssignment(models.Model):
    class Mode(models.TextChoices):
        INCLUDE = "include", "Included"
        EXCLUDE = "exclude", "Excluded"

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="assignments")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="profile_assignments")
    mode = models.CharField(max_length=10, choices=Mode.choices)

    class Meta:
        ordering = ["mode", "group__display_name"]
        constraints = [
            models.UniqueConstraint(fields=["profile", "group"], name="unique_profile_group_assignment")
        ]

    def __str__(self) -> str:
        return f"{self.get_mode_display()}: {self.group}"


class ApplicabilityRule(models.Model):
    """Windows only. All rules of a profile must hold for a device to get it."""

    class RuleType(models.TextChoices):
        INCLUDE = "include", "Assign profile if"
        EXCLUDE = "exclude", "Don't assign profile if"

    class Property(models.TextChoices):
        OS_EDITION = "osEdition", "OS edition"
        OS_VERSION = "osVersion", "OS version"

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="applicability_rules")
    position = models.PositiveSmallIntegerField(default=0)
    rule_type = models.CharField(max_length=10, choices=RuleType.choices)
    os_property = models.CharField("property", max_length=20, choices=Property.choices)
    editions = models.JSONField(default=list, blank=True)
    min_version = models.CharField(max_length=50, blank=True)
    max_version = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        if self.os_property == self.Property.OS_EDITION:
            labels = dict(WindowsEdition.choices)
            target = ", ".join(str(labels.get(e, e)) for e in self.editions)
            return f"{self.get_rule_type_display()} OS edition is {target}"
        return f"{self.get_rule_type_display()} OS version is {self.min_version} to {self.max_version}"

    @property
    def min_key(self) -> str:
        return version_key(self.min_version)

    @property
    def max_key(self) -> str:
        return version_key(self.max_version)


class DeliveryStatus(models.TextChoices):
    """The states of a profile on a device (and of one certificate of it), as the overview counts them.

    The table of reported states is ``delivery.models.DeliveryState``; the last two values are
    per certificate only (a certificate the device must remove, and one it confirmed removing).
    """

    SUCCEEDED = "succeeded", "Succeeded"
    ERROR = "error", "Error"
    CONFLICT = "conflict", "Conflict"
    PENDING = "pending", "Pending"
    NOT_APPLICABLE = "notApplicable", "Not applicable"
    REMOVAL_PENDING = "removalPending", "Removal pending"
    REMOVED = "removed", "Removed"

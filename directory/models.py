"""The tenant directory: users, groups and managed devices, as Entra ID and Intune know them."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class Platform(models.TextChoices):
    """The six platforms an imported PKCS certificate profile can target."""

    ANDROID_DEVICE_ADMIN = "androidDeviceAdministrator", "Android device administrator"
    ANDROID_FULLY_MANAGED = (
        "androidEnterpriseFullyManaged",
        "Android Enterprise (fully managed, dedicated and corporate-owned work profile)",
    )
    ANDROID_WORK_PROFILE = (
        "androidEnterpriseWorkProfile",
        "Android Enterprise (personally-owned work profile)",
    )
    IOS = "iOS", "iOS/iPadOS"
    MACOS = "macOS", "macOS"
    WINDOWS = "windows10", "Windows 10 and later"


class WindowsEdition(models.TextChoices):
    """Windows editions as Graph's windows10EditionType names them."""

    ENTERPRISE = "windows10Enterprise", "Enterprise"
    ENTERPRISE_N = "windows10EnterpriseN", "Enterprise N"
    EDUCATION = "windows10Education", "Education"
    EDUCATION_N = "windows10EducationN", "Education N"
    MOBILE_ENTERPRISE = "windows10MobileEnterprise", "Mobile Enterprise"
    HOLOGRAPHIC_ENTERPRISE = "windows10HolographicEnterprise", "Holographic Enterprise"
    PROFESSIONAL = "windows10Professional", "Professional"
    PROFESSIONAL_N = "windows10ProfessionalN", "Professional N"
    PROFESSIONAL_EDUCATION = "windows10ProfessionalEducation", "Professional Education"
    PROFESSIONAL_EDUCATION_N = "windows10ProfessionalEducationN", "Professional Education N"
    PROFESSIONAL_WORKSTATION = "windows10ProfessionalWorkstation", "Professional Workstation"
    PROFESSIONAL_WORKSTATION_N = "windows10ProfessionalWorkstationN", "Professional Workstation N"
    HOME = "windows10Home", "Home"
    HOME_CHINA = "windows10HomeChina", "Home China"
    HOME_N = "windows10HomeN", "Home N"
    HOME_SINGLE_LANGUAGE = "windows10HomeSingleLanguage", "Home Single Language"
    MOBILE = "windows10Mobile", "Mobile"
    IOT_CORE = "windows10IoTCore", "IoT Core"
    IOT_CORE_COMMERCIAL = "windows10IoTCoreCommercial", "IoT Core Commercial"


def version_key(version: str) -> str:
    """A sortable form of a dotted version, so ``10.0.9`` < ``10.0.10`` in SQL string comparisons.

    Each of up to four numeric components is zero-padded to ten digits; missing
    components count as 0. Non-numeric parts count as 0 too.
    """
    parts = []
    for raw in (version or "").strip().split(".")[:4]:
        digits = "".join(ch for ch in raw if ch.isdigit())[:10]
        parts.append(int(digits) if digits else 0)
    while len(parts) < 4:
        parts.append(0)
    return ".".join(f"{p:010d}" for p in parts)


class UserSource(models.TextChoices):
    """Where a user row came from. Only Entra ID (and the demo tenant, which stands in for it in the
    demo's Graph emulator) lists users Intune knows: a certificate for anyone else is refused."""

    ENTRA = "entra", "Entra ID sync"
    CSV = "csv", "CSV import"
    DEMO = "demo", "Demo tenant"


def not_in_entra(prefix: str = "") -> Q:
    """Users Intune does not know (as far as the portal can tell): imported from CSV and never found
    by a directory sync, removed, or missing from the last sync. ``prefix`` as in ``"user__"``."""
    return (
        Q(**{f"{prefix}source": UserSource.CSV})
        | Q(**{f"{prefix}removed_at__isnull": False})
        | Q(**{f"{prefix}missing_from_entra_at__isnull": False})
    )


class DirectoryUser(models.Model):
    object_id = models.UUIDField(default=uuid.uuid4, unique=True)
    source = models.CharField(max_length=10, choices=UserSource.choices, default=UserSource.ENTRA)
    upn = models.CharField("user principal name", max_length=255)
    display_name = models.CharField(max_length=255)
    given_name = models.CharField(max_length=100, blank=True)
    surname = models.CharField(max_length=100, blank=True)
    mail = models.EmailField(max_length=255, blank=True)
    proxy_addresses = models.JSONField(default=list, blank=True)
    department = models.CharField(max_length=100, blank=True)
    job_title = models.CharField(max_length=100, blank=True)
    account_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Set when a directory sync no longer finds the user; the row stays for history.
    removed_at = models.DateTimeField(null=True, blank=True)
    # Set instead of removed_at when the user who is gone from Entra ID still holds certificates:
    # an administrator decides what becomes of them. Cleared if a later sync finds the user again.
    missing_from_entra_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["display_name", "upn"]
        constraints = [models.UniqueConstraint(Lower("upn"), name="unique_user_upn_ci")]

    def __str__(self) -> str:
        return self.upn

    @property
    def in_entra(self) -> bool:
        """Whether Intune should know this user: the opposite of :func:`not_in_entra`."""
        return (
            self.source != UserSource.CSV and self.removed_at is None and self.missing_from_entra_at is None
        )

    def addresses(self) -> set[str]:
        """Every address the user is known by, lower-cased: UPN, mail and SMTP proxy addresses."""
        found = {self.upn.lower()}
        if self.mail:
            found.add(self.mail.lower())
        for proxy in self.proxy_addresses or []:
            if isinstance(proxy, str) and proxy.lower().startswith("smtp:"):
                found.add(proxy[5:].lower())
        return found


class Group(models.Model):
    class Kind(models.TextChoices):
        USER = "user", "User group"
        DEVICE = "device", "Device group"

    object_id = models.UUIDField(default=uuid.uuid4, unique=True)
    display_name = models.CharField(max_length=255)
    description = models.CharField(max_length=1000, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.USER)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    users = models.ManyToManyField(
        DirectoryUser, through="GroupUserMember", related_name="groups", blank=True
    )
    devices: models.ManyToManyField[Device, GroupDeviceMember] = models.ManyToManyField(
        "Device", through="GroupDeviceMember", related_name="groups", blank=True
    )

    class Meta:
        ordering = ["display_name"]

    def __str__(self) -> str:
        return self.display_name


class GroupUserMember(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="user_members")
    user = models.ForeignKey(DirectoryUser, on_delete=models.CASCADE, related_name="memberships")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "user"], name="unique_group_user")]
        indexes = [models.Index(fields=["user", "group"])]

    def __str__(self) -> str:
        return f"{self.user} in {self.group}"


class GroupDeviceMember(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="device_members")
    device = models.ForeignKey("Device", on_delete=models.CASCADE, related_name="memberships")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "device"], name="unique_group_device")]
        indexes = [models.Index(fields=["device", "group"])]

    def __str__(self) -> str:
        return f"{self.device} in {self.group}"


class Device(models.Model):
    class Ownership(models.TextChoices):
        CORPORATE = "company", "Corporate"
        PERSONAL = "personal", "Personal"

    device_id = models.UUIDField(default=uuid.uuid4, unique=True)
    name = models.CharField(max_length=255)
    platform = models.CharField(max_length=40, choices=Platform.choices)
    os_edition = models.CharField(max_length=60, choices=WindowsEdition.choices, blank=True)
    os_version = models.CharField(max_length=50, blank=True)
    os_version_key = models.CharField(max_length=50, blank=True, db_index=True, editable=False)
    primary_user = models.ForeignKey(
        DirectoryUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="devices"
    )
    manufacturer = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    serial_number = models.CharField(max_length=100, blank=True)
    ownership = models.CharField(max_length=10, choices=Ownership.choices, default=Ownership.CORPORATE)
    last_check_in = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["platform", "os_edition"])]

    def __str__(self) -> str:
        return self.name

    def set_os_version(self, version: str) -> None:
        self.os_version = version
        self.os_version_key = version_key(version)

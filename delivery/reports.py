"""What the delivery pages read: certificates on devices, per device, per user, across the tenant.

Everything reads the one status table (:class:`delivery.models.DeliveryState`). A row is visible
to an admin who may read its profile (``profiles.read`` over the profile's scope tags); the
certificate's details read through its user, as on the certificate pages. Each function returns
a queryset read in one query, whatever the number of rows, profiles or devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Count, Q, QuerySet

from delivery.models import DeliveryState
from directory.models import Device, DirectoryUser, Platform
from portal import access
from portal.access import AnyUser
from profiles.models import DeliveryStatus, Profile

_RELATED = ("device", "user", "profile", "certificate")
# A certificate's PFX and encrypted password are never shown here: not read either.
_UNREAD = ("certificate__pfx_blob", "certificate__encrypted_password")


def profile_scope(user: AnyUser) -> str:
    """Names the rows ``user`` reads: admins with the same name see the same ones."""
    if access.reads_all(user, Profile):
        return "all"
    tag_ids = access.grant(user, "profiles.read").tag_ids or frozenset()
    return "tags:" + ",".join(str(pk) for pk in sorted(tag_ids))


def visible(user: AnyUser) -> QuerySet[DeliveryState]:
    """The rows ``user`` may read: those of the profiles their scope tags reach."""
    rows = DeliveryState.objects.all()
    if not access.has_perm(user, "directory.read"):
        return rows.none()
    if access.reads_all(user, Profile):
        return rows
    return rows.filter(profile_id__in=access.scoped(Profile.objects.all(), user).values("pk"))


def for_device(user: AnyUser, device: Device) -> QuerySet[DeliveryState]:
    """A device's certificates, every state and age (no window), newest first within each profile."""
    return (
        visible(user)
        .filter(device=device)
        .select_related(*_RELATED)
        .defer(*_UNREAD)
        .order_by("profile__name", "profile_id", "-certificate__not_after", "certificate_thumbprint")
    )


BADGES: dict[str, str] = {
    str(DeliveryStatus.SUCCEEDED): "badge-ok",
    str(DeliveryStatus.ERROR): "badge-err",
    str(DeliveryStatus.CONFLICT): "badge-err",
    str(DeliveryStatus.PENDING): "badge-warn",
    str(DeliveryStatus.REMOVAL_PENDING): "badge-warn",
}
_STATUS_LABELS = dict(DeliveryStatus.choices)
_PLATFORM_LABELS = dict(Platform.choices)


@dataclass(frozen=True, slots=True)
class Delivered:
    """One certificate on one device, as the user page shows it (plain values: the page is read often)."""

    device_id: UUID
    device_name: str
    device_platform: str
    device_checked_in: datetime | None
    profile: str
    certificate_code: UUID | None
    thumbprint: str
    not_after: datetime | None
    status: str
    changed_at: datetime
    error_code: str
    error_message: str
    source: str = "portal"
    source_detail: str = ""

    @property
    def status_label(self) -> str:
        return _STATUS_LABELS.get(self.status, self.status)

    @property
    def badge(self) -> str:
        return BADGES.get(self.status, "")


_USER_COLUMNS = (
    "device__device_id",
    "device__name",
    "device__platform",
    "device__last_check_in",
    "profile__name",
    "certificate__code",
    "certificate_thumbprint",
    "certificate__not_after",
    "status",
    "changed_at",
    "error_code",
    "error_message",
    "source",
    "source_detail",
)


def for_user(user: AnyUser, directory_user: DirectoryUser) -> list[Delivered]:
    """Every certificate x device of a directory user (the row's user when it was written), in one query."""
    rows = (
        visible(user)
        .filter(user=directory_user)
        .order_by(
            "device__name",
            "device_id",
            "profile__name",
            "profile_id",
            "-certificate__not_after",
            "certificate_thumbprint",
        )
        .values_list(*_USER_COLUMNS)
    )
    found = []
    for device_id, name, platform, checked_in, *rest in rows:
        found.append(Delivered(device_id, name, _PLATFORM_LABELS.get(platform, platform), checked_in, *rest))
    return found


def across_tenant(user: AnyUser, filters: dict[str, Any]) -> QuerySet[DeliveryState]:
    """Devices > Monitor > Certificates: newest rows first, filtered (see ``CertificateFilterForm``)."""
    rows = visible(user)
    if filters.get("status"):
        rows = rows.filter(status=filters["status"])
    if filters.get("error"):
        rows = rows.filter(error_code=filters["error"])
    if filters.get("platform"):
        rows = rows.filter(device__platform=filters["platform"])
    if q := filters.get("q"):
        rows = rows.filter(_search(q))
    return rows.select_related(*_RELATED).defer(*_UNREAD).order_by("-pk")


# Users or devices a search picks by id; more, and the search runs as a join instead.
SEARCH_IDS = 1000
_HEX = frozenset("0123456789abcdefABCDEF")


def _search(q: str) -> Q:
    """Rows of the devices and users whose name contains ``q``, or of the certificates whose thumbprint starts so.

    The names are looked up first (one scan of each table, not one per status row), so the rows
    are then read through their device and user indexes; eight hex digits or more are a thumbprint.
    """
    if len(q) >= 8 and set(q) <= _HEX:
        return Q(certificate_thumbprint__startswith=q.lower())
    users = list(
        DirectoryUser.objects.filter(upn__icontains=q).values_list("pk", flat=True)[: SEARCH_IDS + 1]
    )
    devices = list(Device.objects.filter(name__icontains=q).values_list("pk", flat=True)[: SEARCH_IDS + 1])
    if len(users) > SEARCH_IDS or len(devices) > SEARCH_IDS:
        return Q(device__name__icontains=q) | Q(user__upn__icontains=q)
    return Q(user_id__in=users) | Q(device_id__in=devices)


@dataclass(frozen=True)
class FailingCode:
    code: str
    devices: int


def failing_by_code(user: AnyUser, *, limit: int = 8) -> list[FailingCode]:
    """Devices with a certificate in Error, per error code, most devices first (one grouped query)."""
    rows = (
        visible(user)
        .filter(status=DeliveryStatus.ERROR)
        .values("error_code")
        .annotate(devices=Count("device_id", distinct=True))
        .order_by("-devices", "error_code")[:limit]
    )
    return [FailingCode(row["error_code"], row["devices"]) for row in rows]


def failing_devices(user: AnyUser, *, source: str = "") -> int:
    """Devices with at least one certificate in Error (as ``source`` reports it, or any source)."""
    rows = visible(user).filter(status=DeliveryStatus.ERROR)
    if source:
        rows = rows.filter(source=source)
    found: int = rows.aggregate(n=Count("device_id", distinct=True))["n"]
    return found

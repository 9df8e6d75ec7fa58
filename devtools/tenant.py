"""The Contoso demo tenant: directory users, groups and devices, plus demo admins for every built-in role.

Everything is generated from a fixed random seed and identified by stable ids
(uuid5 of a natural key), so seeding twice creates nothing the second time.
Existing rows are never modified: an admin's edits to the demo survive a re-seed.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from devtools.admins import (
    DEMO_ADMINS,
    DEMO_PASSWORD,
    DEMO_TOTP_SECRET,
    SCOPE_TAGS,
    domain,
    mfa_required_emails,
)
from devtools.production import refuse_in_production
from devtools.tenant_data import (
    ANDROID_LEGACY_VERSIONS,
    ANDROID_MODELS,
    ANDROID_VERSIONS,
    DEPARTMENTS,
    DEVICE_GROUPS,
    FIRST_NAMES,
    GUESTS,
    IOS_MODELS,
    IOS_VERSIONS,
    MAC_MODELS,
    MACOS_VERSIONS,
    REGIONS,
    SURNAMES,
    USER_GROUPS,
    WINDOWS_EDITIONS,
    WINDOWS_MODELS,
    WINDOWS_VERSIONS,
)
from directory.models import (
    Device,
    DirectoryUser,
    Group,
    GroupDeviceMember,
    GroupUserMember,
    Platform,
    UserSource,
    version_key,
)
from portal import audit
from portal.models import AuditEvent, Role, RoleAssignment, ScopeTag, User

SEED = 20260401
USER_COUNT = 320
NAMESPACE = uuid.UUID("6f1c0f8e-3b9a-4d4e-9a51-7c0e2a1d5b10")


def _id(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{kind}:{key}")


def _ascii(text: str) -> str:
    table = str.maketrans("éèëöüøåáóíñçÉÖÜØÅ", "eeeouoaaoincEOUOA")
    return text.translate(table).lower().replace(" ", "")


@dataclass
class Tenant:
    users: list[DirectoryUser] = field(default_factory=list)
    regions: dict[str, str] = field(default_factory=dict)  # upn -> region
    devices: list[Device] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    user_members: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)  # (group, user) object ids
    device_members: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)  # (group, device id)


def build_tenant(now: dt.datetime) -> Tenant:
    """The whole demo directory, in memory; the same every time for the same domain."""
    rng = random.Random(SEED)
    tenant = Tenant()
    _build_users(rng, tenant, now)
    _build_devices(rng, tenant, now)
    _build_groups(tenant)
    return tenant


def _build_users(rng: random.Random, tenant: Tenant, now: dt.datetime) -> None:
    d = domain()
    onmicrosoft = f"{d.split('.')[0]}.onmicrosoft.com"
    taken: set[str] = set()
    while len(tenant.users) < USER_COUNT:
        given, surname = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
        local = f"{_ascii(given)}.{_ascii(surname)}"
        n = 1
        while (local if n == 1 else f"{local}{n}") in taken:
            n += 1
        local = local if n == 1 else f"{local}{n}"
        taken.add(local)
        department = rng.choice(list(DEPARTMENTS))
        upn = f"{local}@{d}"
        alias = f"{_ascii(given)[0]}{_ascii(surname).replace(chr(39), '')}"
        index = len(tenant.users)
        tenant.users.append(
            DirectoryUser(
                object_id=_id("user", upn),
                source=UserSource.DEMO,
                upn=upn,
                display_name=f"{given} {surname}",
                given_name=given,
                surname=surname,
                mail=upn,
                proxy_addresses=[f"SMTP:{upn}", f"smtp:{alias}@{d}", f"smtp:{local}@{onmicrosoft}"],
                department=department,
                job_title=rng.choice(DEPARTMENTS[department]),
                # A few blocked and removed accounts, as any real tenant has.
                account_enabled=index % 29 != 7,
                removed_at=now - dt.timedelta(days=rng.randint(3, 90)) if index % 53 == 11 else None,
            )
        )
        tenant.regions[upn] = REGIONS[0] if rng.random() < 0.55 else REGIONS[1]
    for given, surname, home in GUESTS:
        mail = f"{_ascii(given)}.{_ascii(surname)}@{home}"
        upn = f"{mail.replace('@', '_')}#EXT#@{onmicrosoft}"
        tenant.users.append(
            DirectoryUser(
                object_id=_id("user", upn),
                source=UserSource.DEMO,
                upn=upn,
                display_name=f"{given} {surname} ({home.split('.')[0].title()})",
                given_name=given,
                surname=surname,
                mail=mail,
                proxy_addresses=[f"SMTP:{mail}"],
                department="",
                job_title="Guest",
            )
        )


def _check_in(rng: random.Random, now: dt.datetime) -> dt.datetime | None:
    roll = rng.random()
    if roll < 0.02:
        return None
    if roll < 0.1:
        return now - dt.timedelta(days=rng.randint(31, 120), minutes=rng.randint(0, 1440))
    return now - dt.timedelta(minutes=rng.randint(5, 60 * 24 * 7))


def _weighted_edition(rng: random.Random) -> str:
    editions, weights = zip(*WINDOWS_EDITIONS, strict=True)
    return str(rng.choices(editions, weights=weights)[0])


def _device(
    rng: random.Random, index: int, platform: str, owner: DirectoryUser | None, now: dt.datetime
) -> Device:
    first = owner.given_name if owner else ""
    serial = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(10))
    device = Device(
        device_id=_id("device", str(index)),
        platform=platform,
        primary_user=owner,
        serial_number=serial,
        ownership=Device.Ownership.CORPORATE,
        last_check_in=_check_in(rng, now),
    )
    if platform == Platform.WINDOWS:
        device.manufacturer, device.model = rng.choice(WINDOWS_MODELS)
        device.os_edition = _weighted_edition(rng)
        device.set_os_version(rng.choice(WINDOWS_VERSIONS))
        prefix = "KIOSK" if owner is None else "CON"
        device.name = f"{prefix}-{serial[:7]}"
    elif platform == Platform.IOS:
        device.manufacturer, device.model = "Apple", rng.choice(IOS_MODELS)
        device.set_os_version(rng.choice(IOS_VERSIONS))
        kind = "iPad" if device.model.startswith("iPad") else "iPhone"
        device.name = f"{first}\u2019s {kind}" if owner else f"Shared {kind} {serial[:4]}"
    elif platform == Platform.MACOS:
        device.manufacturer, device.model = "Apple", rng.choice(MAC_MODELS)
        device.set_os_version(rng.choice(MACOS_VERSIONS))
        device.name = f"{first}\u2019s {device.model.split(' (')[0]}" if owner else f"MAC-{serial[:7]}"
    else:
        device.manufacturer, device.model = rng.choice(ANDROID_MODELS)
        legacy = platform == Platform.ANDROID_DEVICE_ADMIN
        device.set_os_version(rng.choice(ANDROID_LEGACY_VERSIONS if legacy else ANDROID_VERSIONS))
        device.name = (
            f"{first}_{device.model.replace(' ', '')}_{serial[:4]}" if owner else f"KIOSK-AND-{serial[:5]}"
        )
        if platform == Platform.ANDROID_WORK_PROFILE:
            device.ownership = Device.Ownership.PERSONAL
    if owner and owner.removed_at is None and index % 41 == 5:
        device.removed_at = now - dt.timedelta(days=rng.randint(1, 60))
    return device


def _build_devices(rng: random.Random, tenant: Tenant, now: dt.datetime) -> None:
    members = [u for u in tenant.users if "#EXT#" not in u.upn]
    platforms = (
        (Platform.WINDOWS, 0.9),
        (Platform.IOS, 0.45),
        (Platform.MACOS, 0.12),
        (Platform.ANDROID_FULLY_MANAGED, 0.1),
        (Platform.ANDROID_WORK_PROFILE, 0.15),
        (Platform.ANDROID_DEVICE_ADMIN, 0.04),
    )
    for user in members:
        for platform, chance in platforms:
            if rng.random() < chance:
                tenant.devices.append(_device(rng, len(tenant.devices), platform, user, now))
    # Userless kiosks and shared devices.
    for platform in (Platform.WINDOWS,) * 6 + (Platform.ANDROID_FULLY_MANAGED,) * 5 + (Platform.IOS,) * 3:
        tenant.devices.append(_device(rng, len(tenant.devices), platform, None, now))


def _build_groups(tenant: Tenant) -> None:
    members = [u for u in tenant.users if "#EXT#" not in u.upn and u.removed_at is None]
    guests = [u for u in tenant.users if "#EXT#" in u.upn]
    for name, description, rule in USER_GROUPS:
        group = Group(
            object_id=_id("group", name), display_name=name, description=description, kind=Group.Kind.USER
        )
        tenant.groups.append(group)
        if rule == "all":
            chosen = members
        elif rule == "smime":
            chosen = [u for i, u in enumerate(members) if i % 3 != 0]
        elif rule == "pilot":
            chosen = [u for u in members if u.department == "IT"] + members[:12]
        elif rule == "vpn":
            chosen = [u for i, u in enumerate(members) if i % 4 == 1]
        elif rule == "guests":
            chosen = guests
        elif rule in REGIONS:
            chosen = [u for u in members if tenant.regions.get(u.upn) == rule]
        elif rule == "none":
            chosen = []
        else:
            chosen = [u for u in members if u.department == rule]
        seen: set[uuid.UUID] = set()
        for user in chosen:
            if user.object_id not in seen:
                seen.add(user.object_id)
                tenant.user_members.append((group.object_id, user.object_id))
    live = [d for d in tenant.devices if d.removed_at is None]
    for name, description, rule in DEVICE_GROUPS:
        group = Group(
            object_id=_id("group", name), display_name=name, description=description, kind=Group.Kind.DEVICE
        )
        tenant.groups.append(group)
        if rule == "win11":
            chosen_devices = [
                d
                for d in live
                if d.platform == Platform.WINDOWS and d.os_version_key >= version_key("10.0.22000")
            ]
        elif rule == "kiosk":
            chosen_devices = [d for d in live if d.primary_user is None]
        elif rule == "none":
            chosen_devices = []
        else:
            chosen_devices = [d for d in live if d.platform == rule]
        tenant.device_members += [(group.object_id, d.device_id) for d in chosen_devices]


# --- Writing it --------------------------------------------------------------------


@dataclass
class SeedResult:
    users: int = 0
    groups: int = 0
    devices: int = 0
    memberships: int = 0
    admins: int = 0
    tags: int = 0
    assignments: int = 0
    totp: list[str] = field(default_factory=list)

    @property
    def created_anything(self) -> bool:
        return any(
            (
                self.users,
                self.groups,
                self.devices,
                self.memberships,
                self.admins,
                self.tags,
                self.assignments,
            )
        )


def seed(*, now: dt.datetime | None = None) -> SeedResult:
    """Create whatever part of the demo tenant is missing. Safe to run any number of times."""
    refuse_in_production("Seeding the demo tenant")
    tenant = build_tenant(now or timezone.now())
    result = SeedResult()
    with transaction.atomic():
        _save_directory(tenant, result)
        _save_admins(result)
        if result.created_anything:
            audit.record(
                audit.Actor.system("seed_demo"),
                activity="Seed demo tenant",
                category="Directory",
                operation=AuditEvent.Operation.CREATE,
                resources=[
                    audit.resource(
                        type="Demo tenant",
                        id=domain(),
                        name=f"{settings.PORTAL_TENANT_NAME} ({domain()})",
                        changes=[{"field": k, "old": None, "new": v} for k, v in _counts(result).items()],
                    )
                ],
            )
    return result


def _counts(result: SeedResult) -> dict[str, int]:
    return {
        "users": result.users,
        "groups": result.groups,
        "devices": result.devices,
        "memberships": result.memberships,
        "admins": result.admins,
        "scope tags": result.tags,
        "role assignments": result.assignments,
    }


def _save_directory(tenant: Tenant, result: SeedResult) -> None:
    existing_users = set(DirectoryUser.objects.values_list("object_id", flat=True))
    existing_upns = {u.lower() for u in DirectoryUser.objects.values_list("upn", flat=True)}
    new_users = [
        u for u in tenant.users if u.object_id not in existing_users and u.upn.lower() not in existing_upns
    ]
    DirectoryUser.objects.bulk_create(new_users, batch_size=500)
    result.users = len(new_users)
    user_pk = dict(DirectoryUser.objects.values_list("object_id", "pk"))

    existing_devices = set(Device.objects.values_list("device_id", flat=True))
    new_devices = [d for d in tenant.devices if d.device_id not in existing_devices]
    for device in new_devices:
        owner = device.primary_user
        device.primary_user = None
        device.primary_user_id = user_pk.get(owner.object_id) if owner else None
    Device.objects.bulk_create(new_devices, batch_size=500)
    result.devices = len(new_devices)
    device_pk = dict(Device.objects.values_list("device_id", "pk"))

    existing_groups = set(Group.objects.values_list("object_id", flat=True))
    new_groups = [g for g in tenant.groups if g.object_id not in existing_groups]
    Group.objects.bulk_create(new_groups)
    result.groups = len(new_groups)
    group_pk = dict(Group.objects.values_list("object_id", "pk"))

    have_users = set(GroupUserMember.objects.values_list("group_id", "user_id"))
    want_users = {
        (group_pk[g], user_pk[u]) for g, u in tenant.user_members if g in group_pk and u in user_pk
    } - have_users
    GroupUserMember.objects.bulk_create(
        [GroupUserMember(group_id=g, user_id=u) for g, u in sorted(want_users)], batch_size=1000
    )
    have_devices = set(GroupDeviceMember.objects.values_list("group_id", "device_id"))
    want_devices = {
        (group_pk[g], device_pk[d]) for g, d in tenant.device_members if g in group_pk and d in device_pk
    } - have_devices
    GroupDeviceMember.objects.bulk_create(
        [GroupDeviceMember(group_id=g, device_id=d) for g, d in sorted(want_devices)], batch_size=1000
    )
    result.memberships = len(want_users) + len(want_devices)


def _save_admins(result: SeedResult) -> None:
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    ScopeTag.default()
    tags = {ScopeTag.DEFAULT_NAME: ScopeTag.default()}
    for name, description in SCOPE_TAGS.items():
        tags[name], created = ScopeTag.objects.get_or_create(name=name, defaults={"description": description})
        result.tags += created
    roles = {role.key: role for role in Role.objects.filter(is_built_in=True)}
    mfa = mfa_required_emails()
    password_hash: str | None = None
    for admin in DEMO_ADMINS:
        email = f"{admin.local_part}@{domain()}"
        user = User.objects.filter(email=email).first()
        if user is None:
            password_hash = password_hash or make_password(DEMO_PASSWORD)
            user = User.objects.create(email=email, display_name=admin.display_name, password=password_hash)
            result.admins += 1
        EmailAddress.objects.get_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        role = roles.get(admin.role_key)
        if role is not None:
            name = f"Demo: {admin.display_name}"
            assignment, created = RoleAssignment.objects.get_or_create(
                role=role, name=name, defaults={"description": "Created by seed_demo."}
            )
            if created:
                assignment.members.add(user)
                assignment.scope_tags.set([tags[t] for t in admin.tags])
                result.assignments += 1
        if (
            email in mfa
            and not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
        ):
            TOTP.activate(user, DEMO_TOTP_SECRET)
            result.totp.append(email)

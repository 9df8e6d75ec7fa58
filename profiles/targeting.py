"""Who a profile reaches, and why everyone else is left out: the targeting rules.

The rules follow Intune's documented behaviour:

* Included groups, *All users* and *All devices* target; excluded groups remove.
  An exclusion only beats an inclusion of the same group type: a device-group
  exclusion does not remove a user targeted through a user group (or *All users*),
  and a user-group exclusion does not remove a device targeted through a device group.
* A user-targeted profile goes to the user's devices (here: the devices whose
  primary user they are). A device-targeted profile goes to the device and its primary
  user; imported certificates are user certificates, so a device without a primary user
  cannot get one.
* A reached device whose platform is not the profile's is *Not applicable*, and so is a
  Windows device that fails an applicability rule. Every rule must hold: an "Assign
  profile if" rule must match, a "Don't assign profile if" rule must not. OS version
  ranges include both ends and compare numerically (``10.0.9`` < ``10.0.10``).
* Two profiles of the same platform and intended purpose that reach one device are in
  *Conflict* unless their settings agree.

Every device gets one integer of flags, and a state is a pure function of the flags.
Over the whole tenant the flags are computed in SQL (one ``CASE`` per flag, each an
``EXISTS`` the database can hash), so counting is a ``GROUP BY`` and filtering by state
is ``flags IN (...)``. For one user's few devices, the same flags are computed in Python
from memberships loaded once (:class:`UserFacts`), whatever the number of profiles.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Case, Exists, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.db.models.expressions import Combinable

from directory.models import Device, DirectoryUser, GroupDeviceMember, GroupUserMember
from portal.lib.lean import Prepared
from profiles import states
from profiles.models import DeliveryStatus
from profiles.specs import TargetSpec

# --- Flags -------------------------------------------------------------------

USER_INCLUDED = 1 << 0  # the primary user is in an included user group (or All users)
USER_EXCLUDED = 1 << 1  # the primary user is in an excluded user group
DEVICE_INCLUDED = 1 << 2  # the device is in an included device group (or All devices)
DEVICE_EXCLUDED = 1 << 3  # the device is in an excluded device group
PLATFORM_MATCH = 1 << 4
NO_USER = 1 << 5  # no primary user, or one removed from the directory
CONFLICT = 1 << 6  # another profile with other settings reaches the device, or the device said so
DELIVERY_ERROR = 1 << 7
DELIVERY_SUCCEEDED = 1 << 8
RULES_HOLD = 1 << 9  # every applicability rule holds (or there are none)
ALL_FLAGS = (1 << 10) - 1

# States beyond the five check-in statuses, for everything the profile does not reach.
NOT_TARGETED = "notTargeted"
EXCLUDED = "excluded"

STATE_LABELS: dict[str, str] = {
    **{str(value): str(label) for value, label in DeliveryStatus.choices},
    EXCLUDED: "Excluded",
    NOT_TARGETED: "Not targeted",
}
# The check-in statuses in overview order, and their badge classes.
STATUSES: tuple[str, ...] = tuple(
    str(s)
    for s in (
        DeliveryStatus.SUCCEEDED,
        DeliveryStatus.ERROR,
        DeliveryStatus.CONFLICT,
        DeliveryStatus.PENDING,
        DeliveryStatus.NOT_APPLICABLE,
    )
)
REACHED: tuple[str, ...] = STATUSES[:4]  # everything but Not applicable


# --- From flags to states ----------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    state: str
    reason: str  # a code; see reports.Evaluation.explain()


def outcome(flags: int) -> Outcome:
    user_in, user_out = bool(flags & USER_INCLUDED), bool(flags & USER_EXCLUDED)
    device_in, device_out = bool(flags & DEVICE_INCLUDED), bool(flags & DEVICE_EXCLUDED)
    if not (user_in or device_in):
        return Outcome(NOT_TARGETED, "notTargeted")
    if not ((user_in and not user_out) or (device_in and not device_out)):
        return Outcome(EXCLUDED, "excludedByUserGroup" if user_in and user_out else "excludedByDeviceGroup")
    if flags & NO_USER:
        return Outcome(DeliveryStatus.NOT_APPLICABLE, "noPrimaryUser")
    if not flags & PLATFORM_MATCH:
        return Outcome(DeliveryStatus.NOT_APPLICABLE, "platform")
    if not flags & RULES_HOLD:
        return Outcome(DeliveryStatus.NOT_APPLICABLE, "rules")
    if flags & CONFLICT:
        return Outcome(DeliveryStatus.CONFLICT, "conflict")
    if flags & DELIVERY_ERROR:
        return Outcome(DeliveryStatus.ERROR, "deliveryError")
    if flags & DELIVERY_SUCCEEDED:
        return Outcome(DeliveryStatus.SUCCEEDED, "delivered")
    return Outcome(DeliveryStatus.PENDING, "pending")


def deviceless_outcome(flags: int) -> Outcome:
    """A user with no device: reached users wait for one."""
    result = outcome(flags)
    if result.state in (NOT_TARGETED, EXCLUDED):
        return result
    return Outcome(DeliveryStatus.PENDING, "noDevice")


def flags_for(states: Iterable[str]) -> list[int]:
    """Every flags value whose outcome is one of ``states``: filtering by state is ``flags IN (...)``."""
    wanted = set(states)
    return [value for value in range(ALL_FLAGS + 1) if outcome(value).state in wanted]


# --- In SQL, for every device of the tenant (all relative to a Device row) ------


def _user_in(group_ids: frozenset[int]) -> Exists:
    return Exists(GroupUserMember.objects.filter(user_id=OuterRef("primary_user_id"), group_id__in=group_ids))


def _device_in(group_ids: frozenset[int]) -> Exists:
    return Exists(GroupDeviceMember.objects.filter(device_id=OuterRef("pk"), group_id__in=group_ids))


def _has_user() -> Q:
    return Q(primary_user__isnull=False, primary_user__removed_at__isnull=True)


def _flag(condition: Q | Combinable | None, bit: int) -> Case | Value:
    if condition is None:
        return Value(0)
    return Case(When(condition, then=Value(bit)), default=Value(0), output_field=IntegerField())


def reach_q(spec: TargetSpec) -> Q | None:
    """Devices the spec reaches and applies to (None: none at all). Used for conflicts."""
    parts: list[Q] = []
    if spec.targets_users:
        user_part = _has_user()
        if not spec.all_users:
            user_part &= Q(_user_in(spec.include_user_groups))
        if spec.exclude_user_groups:
            user_part &= ~Q(_user_in(spec.exclude_user_groups))
        parts.append(user_part)
    if spec.targets_devices:
        device_part = Q(_device_in(spec.include_device_groups)) if not spec.all_devices else Q()
        if spec.exclude_device_groups:
            device_part &= ~Q(_device_in(spec.exclude_device_groups))
        parts.append(device_part & _has_user())
    if not parts:
        return None
    reach = parts[0] if len(parts) == 1 else parts[0] | parts[1]
    reach &= Q(platform=spec.platform)
    for rule in spec.rules:
        reach &= rule.holds_q()
    return reach


def device_flags(spec: TargetSpec, rivals: Sequence[TargetSpec]) -> Any:
    """The SQL expression giving every device its flags for ``spec``; ``rivals`` are the profiles
    it conflicts with where both reach a device (see :meth:`ProfileSpecs.rivals`)."""
    terms: list[Any] = []
    if spec.targets_users:
        user_in: Q = _has_user()
        if not spec.all_users:
            user_in &= Q(_user_in(spec.include_user_groups))
        terms.append(_flag(user_in, USER_INCLUDED))
    if spec.exclude_user_groups:
        terms.append(_flag(_user_in(spec.exclude_user_groups), USER_EXCLUDED))
    if spec.all_devices:
        terms.append(Value(DEVICE_INCLUDED))
    elif spec.include_device_groups:
        terms.append(_flag(_device_in(spec.include_device_groups), DEVICE_INCLUDED))
    if spec.exclude_device_groups:
        terms.append(_flag(_device_in(spec.exclude_device_groups), DEVICE_EXCLUDED))
    terms.append(_flag(Q(platform=spec.platform), PLATFORM_MATCH))
    terms.append(_flag(~_has_user(), NO_USER))
    conflict: Q | None = None
    for other in rivals:
        other_reach = reach_q(other)
        if other_reach is not None:
            conflict = other_reach if conflict is None else conflict | other_reach
    reported = states.reported(profile_id=spec.profile_id, device_id=OuterRef("pk"))
    if spec.profile_id is not None and reported is not None:
        said_conflict = Q(Exists(reported.filter(status=DeliveryStatus.CONFLICT)))
        conflict = said_conflict if conflict is None else conflict | said_conflict
        terms.append(_flag(Exists(reported.filter(status=DeliveryStatus.ERROR)), DELIVERY_ERROR))
        terms.append(_flag(Exists(reported.filter(status=DeliveryStatus.SUCCEEDED)), DELIVERY_SUCCEEDED))
    terms.append(_flag(conflict, CONFLICT))
    if spec.rules:
        rules = spec.rules[0].holds_q()
        for rule in spec.rules[1:]:
            rules &= rule.holds_q()
        terms.append(_flag(rules, RULES_HOLD))
    else:
        terms.append(Value(RULES_HOLD))
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def users_without_devices(spec: TargetSpec) -> QuerySet[Any]:
    """Current users with no current device, annotated with ``flags`` (user bits only)."""
    terms: list[Any] = []
    if spec.all_users:
        terms.append(Value(USER_INCLUDED))
    elif spec.include_user_groups:
        included = GroupUserMember.objects.filter(
            user_id=OuterRef("pk"), group_id__in=spec.include_user_groups
        )
        terms.append(_flag(Exists(included), USER_INCLUDED))
    if spec.exclude_user_groups:
        excluded = GroupUserMember.objects.filter(
            user_id=OuterRef("pk"), group_id__in=spec.exclude_user_groups
        )
        terms.append(_flag(Exists(excluded), USER_EXCLUDED))
    total: Any = Value(0)
    for term in terms:
        total = total + term
    owned = Device.objects.filter(primary_user_id=OuterRef("pk"), removed_at__isnull=True)
    return DirectoryUser.objects.filter(removed_at__isnull=True).exclude(Exists(owned)).annotate(flags=total)


# --- In Python, for one user's devices -----------------------------------------


@dataclass(frozen=True)
class UserFacts:
    """Everything the flags of one user's devices depend on, read once for every profile."""

    user: DirectoryUser
    devices: tuple[Device, ...]  # current devices whose primary user this is, by name
    user_groups: frozenset[int]
    device_groups: Mapping[int, frozenset[int]]
    reported: Mapping[tuple[int, int], frozenset[str]]  # (profile id, device id) -> statuses

    @classmethod
    def load(cls, user: DirectoryUser) -> UserFacts:
        """In two queries: the devices, then the user's groups, the devices' groups and their reports."""
        devices = tuple(_OWNED_DEVICES.rows(user.pk))
        user_groups: set[int] = set()
        device_groups: defaultdict[int, set[int]] = defaultdict(set)
        reported: defaultdict[tuple[int, int], set[str]] = defaultdict(set)
        for kind, a, b, status in _memberships(user.pk):
            if kind == 0:
                user_groups.add(a)
            elif kind == 1:
                device_groups[a].add(b)
            else:
                reported[(b, a)].add(status)
        return cls(
            user=user,
            devices=devices,
            user_groups=frozenset(user_groups),
            device_groups={d: frozenset(g) for d, g in device_groups.items()},
            reported={key: frozenset(s) for key, s in reported.items()},
        )

    @property
    def in_directory(self) -> bool:
        return self.user.removed_at is None

    def groups_of(self, device: Device) -> frozenset[int]:
        return self.device_groups.get(device.pk, frozenset())


_OWNED_DEVICES = Prepared(
    lambda user_id: Device.objects.filter(primary_user_id=user_id, removed_at__isnull=True).order_by("name")
)


def _memberships(user_id: int) -> list[tuple[int, int, int, str]]:
    """One query for :meth:`UserFacts.load`: ``(0, group, 0, "")`` per group of the user, ``(1, device,
    group, "")`` per group of one of their current devices, ``(2, device, profile, status)`` per state
    those devices reported. Written out: the page of every user runs it, and building three querysets
    costs more than running them."""
    quote = connection.ops.quote_name
    device = quote(Device._meta.db_table)
    owned = f"d.{quote('primary_user_id')} = %s AND d.{quote('removed_at')} IS NULL"
    parts = [
        f"SELECT 0, {quote('group_id')}, 0, '' FROM {quote(GroupUserMember._meta.db_table)}"
        f" WHERE {quote('user_id')} = %s",
        f"SELECT 1, m.{quote('device_id')}, m.{quote('group_id')}, '' FROM {quote(GroupDeviceMember._meta.db_table)} m"
        f" JOIN {device} d ON d.{quote('id')} = m.{quote('device_id')} WHERE {owned}",
    ]
    table = states.reported_table()
    if table is not None:
        parts.append(
            f"SELECT 2, s.{quote('device_id')}, s.{quote('profile_id')}, s.{quote('status')} FROM {quote(table)} s"
            f" JOIN {device} d ON d.{quote('id')} = s.{quote('device_id')} WHERE {owned}"
        )
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), [user_id] * len(parts))
        return [(int(k), int(a), int(b), str(st)) for k, a, b, st in cursor.fetchall()]


def reaches(spec: TargetSpec, device: Device, facts: UserFacts) -> bool:
    """:func:`reach_q` for one of the user's devices."""
    if not facts.in_directory:
        return False
    device_groups = facts.groups_of(device)
    by_user = (
        spec.targets_users
        and (spec.all_users or bool(facts.user_groups & spec.include_user_groups))
        and not facts.user_groups & spec.exclude_user_groups
    )
    by_device = (
        spec.targets_devices
        and (spec.all_devices or bool(device_groups & spec.include_device_groups))
        and not device_groups & spec.exclude_device_groups
    )
    return (
        (by_user or by_device)
        and device.platform == spec.platform
        and all(rule.holds(device) for rule in spec.rules)
    )


def flags_of(spec: TargetSpec, rivals: Sequence[TargetSpec], device: Device, facts: UserFacts) -> int:
    """:func:`device_flags` for one of the user's devices."""
    device_groups = facts.groups_of(device)
    flags = 0
    user_in = spec.all_users or bool(facts.user_groups & spec.include_user_groups)
    if spec.targets_users and facts.in_directory and user_in:
        flags |= USER_INCLUDED
    if facts.user_groups & spec.exclude_user_groups:
        flags |= USER_EXCLUDED
    if spec.all_devices or device_groups & spec.include_device_groups:
        flags |= DEVICE_INCLUDED
    if device_groups & spec.exclude_device_groups:
        flags |= DEVICE_EXCLUDED
    if device.platform == spec.platform:
        flags |= PLATFORM_MATCH
    if not facts.in_directory:
        flags |= NO_USER
    reported: frozenset[str] = frozenset()
    if spec.profile_id is not None:
        reported = facts.reported.get((spec.profile_id, device.pk), frozenset())
    if DeliveryStatus.CONFLICT in reported or any(reaches(other, device, facts) for other in rivals):
        flags |= CONFLICT
    if DeliveryStatus.ERROR in reported:
        flags |= DELIVERY_ERROR
    if DeliveryStatus.SUCCEEDED in reported:
        flags |= DELIVERY_SUCCEEDED
    if all(rule.holds(device) for rule in spec.rules):
        flags |= RULES_HOLD
    return flags


def deviceless_flags(spec: TargetSpec, facts: UserFacts) -> int:
    """:func:`users_without_devices`'s flags for the user (0 once they left the directory)."""
    if not facts.in_directory:
        return 0
    flags = 0
    if spec.all_users or facts.user_groups & spec.include_user_groups:
        flags |= USER_INCLUDED
    if facts.user_groups & spec.exclude_user_groups:
        flags |= USER_EXCLUDED
    return flags


def excluded_by(spec: TargetSpec, facts: UserFacts, device: Device | None, names: Mapping[int, str]) -> str:
    """The name of an excluded group that removes the user (or else the device)."""
    by_user = facts.user_groups & spec.exclude_user_groups
    by_device = facts.groups_of(device) & spec.exclude_device_groups if device is not None else frozenset()
    chosen = sorted((names.get(pk, ""), pk) for pk in by_user or by_device)
    return chosen[0][0] if chosen else ""

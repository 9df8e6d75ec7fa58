"""Who a profile reaches, and why everyone else is left out: the set-based targeting service.

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

Every device gets one integer of flags computed in SQL (one ``CASE`` per flag, each
an ``EXISTS`` the database can hash). A state is a pure function of the flags, so
counting is a ``GROUP BY`` and filtering by state is ``flags IN (...)``; nothing here
queries once per user or device.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.apps import apps
from django.db import connection, transaction
from django.db.models import Case, Exists, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.db.models.expressions import Combinable, RawSQL
from django.utils import timezone

from directory.models import (
    Device,
    DirectoryUser,
    Group,
    GroupDeviceMember,
    GroupUserMember,
    Platform,
    version_key,
)
from profiles.models import ApplicabilityRule, DeliveryState, DeliveryStatus, Profile, ProfileAssignment

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
# A user's status is the worst of their devices'.
_USER_RANK: dict[str, int] = {
    str(DeliveryStatus.NOT_APPLICABLE): 1,
    str(DeliveryStatus.SUCCEEDED): 2,
    str(DeliveryStatus.PENDING): 3,
    str(DeliveryStatus.CONFLICT): 4,
    str(DeliveryStatus.ERROR): 5,
}
REACHED: tuple[str, ...] = STATUSES[:4]  # everything but Not applicable


@contextmanager
def _planner_for_big_scans() -> Iterator[None]:
    """PostgreSQL's JIT compiles these wide CASE/EXISTS queries for longer than they run; skip it."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        yield


# --- What is evaluated -------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    rule_type: str
    os_property: str
    editions: tuple[str, ...] = ()
    min_version: str = ""
    max_version: str = ""

    @property
    def description(self) -> str:
        return ApplicabilityRule(
            rule_type=self.rule_type,
            os_property=self.os_property,
            editions=list(self.editions),
            min_version=self.min_version,
            max_version=self.max_version,
        ).describe()

    def matches_q(self) -> Q:
        if self.os_property == ApplicabilityRule.Property.OS_EDITION:
            return Q(os_edition__in=self.editions)
        return Q(
            os_version_key__gte=version_key(self.min_version),
            os_version_key__lte=version_key(self.max_version),
        ) & ~Q(os_version_key="")

    def holds_q(self) -> Q:
        return self.matches_q() if self.rule_type == ApplicabilityRule.RuleType.INCLUDE else ~self.matches_q()

    def holds(self, device: Device) -> bool:
        """The same test as :meth:`holds_q`, in Python, to name the rule a shown device fails."""
        if self.os_property == ApplicabilityRule.Property.OS_EDITION:
            matches = device.os_edition in self.editions
        else:
            key = device.os_version_key
            matches = bool(key) and version_key(self.min_version) <= key <= version_key(self.max_version)
        return matches if self.rule_type == ApplicabilityRule.RuleType.INCLUDE else not matches


@dataclass(frozen=True)
class TargetSpec:
    """A profile's targeting, saved or not (the wizard previews unsaved ones)."""

    platform: str
    intended_purpose: str
    settings_key: tuple[Any, ...] = ()
    all_users: bool = False
    all_devices: bool = False
    include_user_groups: frozenset[int] = frozenset()
    exclude_user_groups: frozenset[int] = frozenset()
    include_device_groups: frozenset[int] = frozenset()
    exclude_device_groups: frozenset[int] = frozenset()
    rules: tuple[RuleSpec, ...] = ()
    profile_id: int | None = None
    removed_group_ids: frozenset[int] = field(default=frozenset())

    @classmethod
    def build(
        cls,
        *,
        platform: str,
        intended_purpose: str,
        settings_key: tuple[Any, ...] = (),
        all_users: bool = False,
        all_devices: bool = False,
        include_group_ids: Iterable[int] = (),
        exclude_group_ids: Iterable[int] = (),
        rules: Sequence[RuleSpec] = (),
        profile_id: int | None = None,
    ) -> TargetSpec:
        include, exclude = set(include_group_ids), set(exclude_group_ids)
        groups = Group.objects.filter(pk__in=include | exclude).values_list("pk", "kind", "removed_at")
        kinds = {pk: kind for pk, kind, removed in groups if removed is None}
        removed = frozenset(pk for pk, _kind, removed_at in groups if removed_at is not None)

        def of(ids: set[int], kind: str) -> frozenset[int]:
            return frozenset(pk for pk in ids if kinds.get(pk) == kind)

        return cls(
            platform=platform,
            intended_purpose=intended_purpose,
            settings_key=settings_key,
            all_users=all_users,
            all_devices=all_devices,
            include_user_groups=of(include, Group.Kind.USER),
            exclude_user_groups=of(exclude, Group.Kind.USER),
            include_device_groups=of(include, Group.Kind.DEVICE),
            exclude_device_groups=of(exclude, Group.Kind.DEVICE),
            # Rules apply to Windows only, as in Intune.
            rules=tuple(rules) if platform == Platform.WINDOWS else (),
            profile_id=profile_id,
            removed_group_ids=removed,
        )

    @classmethod
    def for_profile(cls, profile: Profile) -> TargetSpec:
        assignments = list(profile.assignments.values_list("group_id", "mode"))
        rules = [
            RuleSpec(
                rule_type=r.rule_type,
                os_property=r.os_property,
                editions=tuple(r.editions or ()),
                min_version=r.min_version,
                max_version=r.max_version,
            )
            for r in profile.applicability_rules.all()
        ]
        return cls.build(
            platform=profile.platform,
            intended_purpose=profile.intended_purpose,
            settings_key=profile.settings_key(),
            all_users=profile.all_users,
            all_devices=profile.all_devices,
            include_group_ids=[g for g, mode in assignments if mode == ProfileAssignment.Mode.INCLUDE],
            exclude_group_ids=[g for g, mode in assignments if mode == ProfileAssignment.Mode.EXCLUDE],
            rules=rules,
            profile_id=profile.pk,
        )

    @property
    def targets_users(self) -> bool:
        return self.all_users or bool(self.include_user_groups)

    @property
    def targets_devices(self) -> bool:
        return self.all_devices or bool(self.include_device_groups)

    @property
    def is_assigned(self) -> bool:
        return self.targets_users or self.targets_devices


# --- SQL pieces (all relative to a Device row) -------------------------------


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


def conflicting_specs(spec: TargetSpec) -> list[TargetSpec]:
    """Other profiles of the same platform and purpose whose settings differ."""
    others = Profile.objects.filter(platform=spec.platform, intended_purpose=spec.intended_purpose)
    if spec.profile_id is not None:
        others = others.exclude(pk=spec.profile_id)
    others = others.prefetch_related("assignments", "applicability_rules")
    return [
        TargetSpec.for_profile(other) for other in others if other.settings_key() != tuple(spec.settings_key)
    ]


def device_flags(spec: TargetSpec) -> Any:
    """The SQL expression giving every device its flags for ``spec``."""
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
    for other in conflicting_specs(spec):
        other_reach = reach_q(other)
        if other_reach is not None:
            conflict = other_reach if conflict is None else conflict | other_reach
    if spec.profile_id is not None:
        reported = DeliveryState.objects.filter(profile_id=spec.profile_id, device_id=OuterRef("pk"))
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


# --- From flags to states ----------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    state: str
    reason: str  # a code; see Evaluation.explain()


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


def flags_for(states: Iterable[str]) -> list[int]:
    """Every flags value whose outcome is one of ``states``: filtering by state is ``flags IN (...)``."""
    wanted = set(states)
    return [value for value in range(ALL_FLAGS + 1) if outcome(value).state in wanted]


def _ints(values: Iterable[int]) -> str:
    return ", ".join(str(int(v)) for v in values) or "NULL"


def _user_rank_sql() -> str:
    """SQL giving a device row's rank in :data:`_USER_RANK` (0: excluded or not targeted)."""
    ranks = sorted(_USER_RANK.items(), key=lambda item: -item[1])
    whens = " ".join(f"WHEN flags IN ({_ints(flags_for([state]))}) THEN {value}" for state, value in ranks)
    return f"CASE {whens} ELSE 0 END"


# Device rows that count towards a user: a primary user still in the directory. (A removed
# user's devices are Not applicable, but the user is no longer one of the tenant's users.)
_CURRENT_OWNER = f"primary_user_id IS NOT NULL AND (flags & {NO_USER}) = 0"
# The flags a user without a device can have (only the user-group bits are computed).
_USER_ONLY_FLAGS: tuple[int, ...] = (0, USER_INCLUDED, USER_EXCLUDED, USER_INCLUDED | USER_EXCLUDED)


@dataclass(frozen=True)
class Summary:
    devices: dict[str, int]
    users: dict[str, int]
    reasons: dict[str, int]

    @property
    def device_total(self) -> int:
        return sum(self.devices[s] for s in STATUSES)

    @property
    def user_total(self) -> int:
        return sum(self.users[s] for s in STATUSES)


@dataclass(frozen=True)
class Pair:
    user_id: int | None
    device_id: int | None
    state: str
    reason: str


@dataclass(frozen=True)
class UserRow:
    """One user's check-in status for a profile: the worst of their devices', with the reasons."""

    user: DirectoryUser
    state: str
    reason: str
    devices: tuple[tuple[Device, str], ...] = ()  # every current device, with its state

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)

    @property
    def devices_text(self) -> str:
        return ", ".join(
            f"{device.name} ({STATE_LABELS.get(state, state)})" for device, state in self.devices
        )


@dataclass(frozen=True)
class Lint:
    code: str
    message: str


class Evaluation:
    """One profile's reach. Cheap to build; each method runs a few set-based queries."""

    def __init__(self, spec: TargetSpec) -> None:
        self.spec = spec

    @cached_property
    def flags(self) -> Any:
        return device_flags(self.spec)

    def outcome(self, flags: int) -> Outcome:
        return outcome(flags)

    # Querysets ---------------------------------------------------------------

    def devices(self) -> QuerySet[Any]:
        """Every current device, annotated with ``flags``."""
        return Device.objects.filter(removed_at__isnull=True).annotate(flags=self.flags)

    def users_without_devices(self) -> QuerySet[Any]:
        """Current users with no current device, annotated with ``flags`` (user bits only)."""
        spec = self.spec
        terms: list[Any] = []
        if spec.all_users:
            terms.append(Value(USER_INCLUDED))
        elif spec.include_user_groups:
            terms.append(
                _flag(
                    Exists(
                        GroupUserMember.objects.filter(
                            user_id=OuterRef("pk"), group_id__in=spec.include_user_groups
                        )
                    ),
                    USER_INCLUDED,
                )
            )
        if spec.exclude_user_groups:
            terms.append(
                _flag(
                    Exists(
                        GroupUserMember.objects.filter(
                            user_id=OuterRef("pk"), group_id__in=spec.exclude_user_groups
                        )
                    ),
                    USER_EXCLUDED,
                )
            )
        total: Any = Value(0)
        for term in terms:
            total = total + term
        owned = Device.objects.filter(primary_user_id=OuterRef("pk"), removed_at__isnull=True)
        return (
            DirectoryUser.objects.filter(removed_at__isnull=True).exclude(Exists(owned)).annotate(flags=total)
        )

    def flags_for(self, states: Iterable[str]) -> list[int]:
        """Every flags value that yields one of ``states`` (to filter in SQL)."""
        return flags_for(states)

    def device_rows(self, states: Iterable[str] | None = None) -> QuerySet[Any]:
        rows = self.devices().select_related("primary_user")
        if states is not None:
            rows = rows.filter(flags__in=self.flags_for(states))
        return rows

    # Whole-tenant results ----------------------------------------------------

    def _deviceless_users(self, *, everyone: bool = False) -> list[tuple[int, int]]:
        rows = self.users_without_devices()
        if not everyone:
            if not self.spec.targets_users:
                return []
            rows = rows.filter(flags__gt=0)
        with _planner_for_big_scans():
            return list(rows.values_list("pk", "flags"))

    def deviceless_outcome(self, flags: int) -> Outcome:
        """A user with no device: reached users wait for one."""
        result = self.outcome(flags)
        if result.state in (NOT_TARGETED, EXCLUDED):
            return result
        return Outcome(DeliveryStatus.PENDING, "noDevice")

    def _with_flags_sql(self) -> tuple[str, tuple[Any, ...]]:
        sql, params = self.devices().values("primary_user_id", "flags").query.sql_with_params()
        return sql, tuple(params)

    def summary(self) -> Summary:
        """Device and user check-in counts for the whole tenant, in two queries.

        Devices are counted per flags value; a user's status is the worst of their
        devices', computed per user in SQL over the same rows.
        """
        inner, params = self._with_flags_sql()
        sql = (
            f"WITH t AS ({inner}) "
            "SELECT 0, flags, COUNT(*) FROM t GROUP BY flags "
            "UNION ALL "
            "SELECT 1, r, COUNT(*) FROM ("
            f"  SELECT primary_user_id, MAX({_user_rank_sql()}) AS r FROM t"
            f"   WHERE {_CURRENT_OWNER} GROUP BY primary_user_id"
            ") u GROUP BY r"
        )
        devices: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        users: Counter[str] = Counter()
        by_rank = {value: state for state, value in _USER_RANK.items()}
        with _planner_for_big_scans(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        for kind, value, n in rows:
            if kind == 0:
                result = self.outcome(value)
                devices[result.state] += n
                reasons[result.reason] += n
            elif value in by_rank:
                users[by_rank[value]] += n
        for _user_id, flags in self._deviceless_users():
            if self.deviceless_outcome(flags).state == DeliveryStatus.PENDING:
                users[DeliveryStatus.PENDING] += 1
                reasons["noDevice"] += 1
        return Summary(
            devices={s: devices.get(s, 0) for s in (*STATUSES, EXCLUDED, NOT_TARGETED)},
            users={s: users.get(s, 0) for s in STATUSES},
            reasons=dict(reasons),
        )

    def reached_user_ids(self, *, without: QuerySet[DirectoryUser] | None = None) -> list[int]:
        """Users reached on an applicable device or waiting for one; optionally leaving out ``without``."""
        inner, params = self._with_flags_sql()
        sql = (
            f"WITH t AS ({inner}) SELECT DISTINCT primary_user_id FROM t "
            f"WHERE primary_user_id IS NOT NULL AND flags IN ({_ints(flags_for(REACHED))})"
        )
        if without is not None:
            holders_sql, holders_params = without.values("pk").query.sql_with_params()
            sql += f" AND primary_user_id NOT IN ({holders_sql})"
            params += tuple(holders_params)
        with _planner_for_big_scans(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            found = [row[0] for row in cursor.fetchall()]
        deviceless = [
            user_id
            for user_id, flags in self._deviceless_users()
            if self.deviceless_outcome(flags).state == DeliveryStatus.PENDING
        ]
        if without is not None and deviceless:
            holding = set(without.filter(pk__in=deviceless).values_list("pk", flat=True))
            deviceless = [u for u in deviceless if u not in holding]
        return found + deviceless

    def pairs(self) -> Iterator[Pair]:
        """Every (user, device) pair with its state and reason, users without a device included."""
        with _planner_for_big_scans():
            rows = list(
                self.devices().values_list("primary_user_id", "pk", "flags").iterator(chunk_size=20_000)
            )
        for user_id, device_id, flags in rows:
            result = self.outcome(flags)
            yield Pair(user_id, device_id, result.state, result.reason)
        for user_id, flags in self._deviceless_users(everyone=True):
            result = self.deviceless_outcome(flags)
            yield Pair(user_id, None, result.state, result.reason)

    # Per user -----------------------------------------------------------------

    def user_rows(self, states: Iterable[str] | None = None) -> QuerySet[DirectoryUser]:
        """Current users whose check-in status is one of ``states`` (default: any), as the overview counts.

        Users with devices are picked by one grouped query over the device flags; users
        without a device by their group flags. Nothing is evaluated per user.
        """
        wanted = [s for s in (STATUSES if states is None else states) if s in _USER_RANK]
        inner, params = self._with_flags_sql()
        ranks = _ints(_USER_RANK[s] for s in wanted)
        with_devices = (
            f"SELECT primary_user_id FROM ({inner}) t WHERE {_CURRENT_OWNER} "
            f"GROUP BY primary_user_id HAVING MAX({_user_rank_sql()}) IN ({ranks})"
        )
        chosen = Q(pk__in=RawSQL(with_devices, params))
        deviceless = [f for f in _USER_ONLY_FLAGS if self.deviceless_outcome(f).state in wanted]
        if deviceless and self.spec.targets_users:
            waiting = self.users_without_devices().filter(flags__in=deviceless).values("pk")
            chosen |= Q(pk__in=waiting)
        return DirectoryUser.objects.filter(removed_at__isnull=True).filter(chosen)

    def user_details(self, users: Sequence[DirectoryUser]) -> list[UserRow]:
        """Status, reason and devices for a page of users (two queries, whatever the page size)."""
        ids = [u.pk for u in users]
        owned: dict[int, list[tuple[Device, Outcome]]] = {}
        for device in self.devices().filter(primary_user_id__in=ids).order_by("name", "pk"):
            owned.setdefault(device.primary_user_id, []).append((device, self.outcome(device.flags)))
        deviceless = dict(
            self.users_without_devices()
            .filter(pk__in=[i for i in ids if i not in owned])
            .values_list("pk", "flags")
        )
        by_rank = {value: state for state, value in _USER_RANK.items()}
        rows = []
        for user in users:
            devices = owned.get(user.pk, [])
            if not devices:
                result = self.deviceless_outcome(deviceless.get(user.pk, 0))
                rows.append(UserRow(user, result.state, self.explain(result.reason)))
                continue
            ranked = [(d, o) for d, o in devices if o.state in _USER_RANK]
            if ranked:
                state = by_rank[max(_USER_RANK[o.state] for _d, o in ranked)]
            else:
                state = EXCLUDED if any(o.state == EXCLUDED for _d, o in devices) else NOT_TARGETED
            reasons = dict.fromkeys(self.explain(o.reason, device=d) for d, o in devices if o.state == state)
            listed = tuple((d, o.state) for d, o in devices)
            rows.append(UserRow(user, state, "; ".join(reasons), listed))
        return rows

    # Explanations -------------------------------------------------------------

    def explain(self, reason: str, *, excluded_by: str = "", device: Device | None = None) -> str:
        spec = self.spec
        if reason == "rules" and device is not None:
            failed = next((rule for rule in spec.rules if not rule.holds(device)), None)
            if failed is not None:
                return f"Fails applicability rule: {failed.description}"
        platform = dict(Platform.choices).get(spec.platform, spec.platform)
        texts = {
            "notTargeted": "Not in any included group",
            "excludedByUserGroup": "Excluded by user group",
            "excludedByDeviceGroup": "Excluded by device group",
            "noPrimaryUser": "No primary user: imported certificates are delivered to a user",
            "platform": f"Platform is not {platform}",
            "conflict": "Another profile with the same purpose and platform but other settings reaches the device",
            "deliveryError": "The device reported an error",
            "delivered": "Delivered",
            "pending": "Waiting for the device to check in",
            "noDevice": "The user has no enrolled device yet",
            "rules": "Fails an applicability rule",
        }
        text = texts.get(reason, reason)
        return f"{text} {excluded_by}" if excluded_by else text

    def excluding_groups(
        self, *, user_ids: Iterable[int], device_ids: Iterable[int]
    ) -> dict[str, dict[int, str]]:
        """For a page of rows: the excluded group that removes each user or device."""
        spec = self.spec
        found: dict[str, dict[int, str]] = {"user": {}, "device": {}}
        names = dict(
            Group.objects.filter(pk__in=spec.exclude_user_groups | spec.exclude_device_groups).values_list(
                "pk", "display_name"
            )
        )
        for uid, gid in GroupUserMember.objects.filter(
            user_id__in=list(user_ids), group_id__in=spec.exclude_user_groups
        ).values_list("user_id", "group_id"):
            found["user"].setdefault(uid, names.get(gid, ""))
        for did, gid in GroupDeviceMember.objects.filter(
            device_id__in=list(device_ids), group_id__in=spec.exclude_device_groups
        ).values_list("device_id", "group_id"):
            found["device"].setdefault(did, names.get(gid, ""))
        return found


def evaluate(profile: Profile) -> Evaluation:
    return Evaluation(TargetSpec.for_profile(profile))


# --- Certificates (the certs app may not have its model yet) -----------------

# The certificate model arrives with the certs app; until then nothing holds a certificate.
CERTIFICATE_MODEL: str = "certs.Certificate"
HoldersFn = Callable[[str], QuerySet[DirectoryUser] | None]


def certificate_holders(purpose: str) -> QuerySet[DirectoryUser] | None:
    """Users holding a current certificate of ``purpose``; None while certificates are not tracked."""
    if not apps.is_installed("certs"):
        return None
    try:
        certificate = apps.get_model(CERTIFICATE_MODEL)
    except LookupError:
        return None
    if certificate._meta.db_table not in connection.introspection.table_names():
        return None  # the model exists but its migration has not run yet
    current = certificate._default_manager.filter(
        user_id=OuterRef("pk"), purpose=purpose, not_after__gt=timezone.now()
    )
    return DirectoryUser.objects.filter(Exists(current))


# --- Lint --------------------------------------------------------------------


def lint(
    evaluation: Evaluation, *, summary: Summary | None = None, holders: HoldersFn = certificate_holders
) -> list[Lint]:
    spec = evaluation.spec
    found: list[Lint] = []
    if spec.targets_users and spec.exclude_device_groups:
        found.append(
            Lint(
                "userIncludeDeviceExclude",
                "Users are targeted through user groups or All users, but the exclusions are device groups. "
                "Intune does not apply device-group exclusions to user targeting: those users' devices still "
                "get the profile. Exclude user groups instead.",
            )
        )
    if spec.targets_devices and spec.exclude_user_groups:
        found.append(
            Lint(
                "deviceIncludeUserExclude",
                "Devices are targeted through device groups or All devices, but the exclusions are user groups. "
                "Intune does not apply user-group exclusions to device targeting. Exclude device groups instead.",
            )
        )
    if spec.targets_users and spec.targets_devices:
        found.append(
            Lint(
                "mixedGroupTypes",
                "The profile targets both user and device groups. Microsoft recommends user groups for "
                "certificates; related profiles (trusted root, S/MIME) assigned to other group types can stay "
                "Pending.",
            )
        )
    all_ids = (
        spec.include_user_groups
        | spec.exclude_user_groups
        | spec.include_device_groups
        | spec.exclude_device_groups
    )
    empty = (
        Group.objects.filter(pk__in=all_ids)
        .exclude(Exists(GroupUserMember.objects.filter(group_id=OuterRef("pk"))))
        .exclude(Exists(GroupDeviceMember.objects.filter(group_id=OuterRef("pk"))))
        .values_list("display_name", flat=True)
    )
    for name in empty:
        found.append(Lint("emptyGroup", f"The group {name} has no members."))
    for name in Group.objects.filter(pk__in=spec.removed_group_ids).values_list("display_name", flat=True):
        found.append(Lint("removedGroup", f"The group {name} was removed from the directory; it is ignored."))
    summary = summary or evaluation.summary()
    holders_qs = holders(spec.intended_purpose)
    if holders_qs is not None and spec.is_assigned:
        missing = evaluation.reached_user_ids(without=holders_qs)
        count = len(missing)
        if count:
            upns = DirectoryUser.objects.filter(pk__in=sorted(missing)[:50]).order_by("upn")
            sample = ", ".join(upns.values_list("upn", flat=True)[:3])
            more = f" and {count - 3} more" if count > 3 else ""
            found.append(
                Lint(
                    "usersWithoutCertificate",
                    f"{count} targeted user{'s' if count != 1 else ''} ha{'ve' if count != 1 else 's'} no current "
                    f"certificate with the intended purpose {spec.intended_purpose}: {sample}{more}.",
                )
            )
    other_platform = summary.reasons.get("platform", 0)
    if other_platform:
        label = dict(Platform.choices).get(spec.platform, spec.platform)
        found.append(
            Lint(
                "otherPlatforms",
                f"{other_platform} targeted device{'s' if other_platform != 1 else ''} "
                f"{'are' if other_platform != 1 else 'is'} not {label} and will show as Not applicable.",
            )
        )
    return found


# --- Per user ----------------------------------------------------------------


@dataclass
class UserDeviceResult:
    device: Device | None
    state: str
    reason: str

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)


@dataclass
class UserProfileResult:
    profile: Profile
    results: list[UserDeviceResult]

    @property
    def reaches(self) -> bool:
        return any(
            r.state not in (NOT_TARGETED, EXCLUDED, DeliveryStatus.NOT_APPLICABLE) for r in self.results
        )

    @property
    def targeted(self) -> bool:
        return any(r.state != NOT_TARGETED for r in self.results)


def profiles_for_user(
    user_obj: DirectoryUser, *, profiles: QuerySet[Profile] | None = None
) -> list[UserProfileResult]:
    """Each profile with the user's devices and what it does on them: reaching ones first.

    Pass ``profiles=access.scoped(Profile.objects.all(), request.user)`` so an admin sees
    only the profiles their scope tags reach.
    """
    profiles = Profile.objects.all() if profiles is None else profiles
    found = []
    for profile in profiles.prefetch_related("assignments", "applicability_rules"):
        evaluation = evaluate(profile)
        results = []
        devices = list(evaluation.devices().filter(primary_user=user_obj).order_by("name"))
        for device in devices:
            result = evaluation.outcome(device.flags)
            excluded = ""
            if result.state == EXCLUDED:
                groups = evaluation.excluding_groups(user_ids=[user_obj.pk], device_ids=[device.pk])
                excluded = groups["user"].get(user_obj.pk, "") or groups["device"].get(device.pk, "")
            text = evaluation.explain(result.reason, excluded_by=excluded, device=device)
            results.append(UserDeviceResult(device, result.state, text))
        if not devices:
            flags = (
                evaluation.users_without_devices()
                .filter(pk=user_obj.pk)
                .values_list("flags", flat=True)
                .first()
            )
            result = evaluation.deviceless_outcome(flags or 0)
            state, reason = result.state, result.reason
            excluded = ""
            if state == EXCLUDED:
                excluded = evaluation.excluding_groups(user_ids=[user_obj.pk], device_ids=[])["user"].get(
                    user_obj.pk, ""
                )
            results.append(UserDeviceResult(None, state, evaluation.explain(reason, excluded_by=excluded)))
        found.append(UserProfileResult(profile, results))
    found.sort(key=lambda r: (not r.reaches, not r.targeted, r.profile.name.lower()))
    return found

"""What a profile does across the tenant and to one user: status counts, device and user rows, reasons.

An :class:`Evaluation` runs a few set-based queries over the flags of
:mod:`profiles.targeting`; nothing here queries once per user, device or profile.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

from directory.models import Device, DirectoryUser, Group, GroupDeviceMember, GroupUserMember, Platform
from profiles.models import DeliveryStatus, Profile
from profiles.specs import TargetSpec, load_specs, tenant_specs
from profiles.targeting import (
    EXCLUDED,
    NO_USER,
    NOT_TARGETED,
    REACHED,
    STATE_LABELS,
    STATUSES,
    USER_EXCLUDED,
    USER_INCLUDED,
    Outcome,
    UserFacts,
    device_flags,
    deviceless_flags,
    deviceless_outcome,
    excluded_by,
    flags_for,
    flags_of,
    outcome,
    users_without_devices,
)

# A user's status is the worst of their devices'.
_USER_RANK: dict[str, int] = {
    str(DeliveryStatus.NOT_APPLICABLE): 1,
    str(DeliveryStatus.SUCCEEDED): 2,
    str(DeliveryStatus.PENDING): 3,
    str(DeliveryStatus.CONFLICT): 4,
    str(DeliveryStatus.ERROR): 5,
}


_PLATFORM_LABELS: dict[str, str] = {str(value): str(label) for value, label in Platform.choices}
_REASON_TEXTS: dict[str, str] = {
    "notTargeted": "Not in any included group",
    "excludedByUserGroup": "Excluded by user group",
    "excludedByDeviceGroup": "Excluded by device group",
    "noPrimaryUser": "No primary user: imported certificates are delivered to a user",
    "conflict": "Another profile with the same purpose and platform but other settings reaches the device",
    "deliveryError": "The device reported an error",
    "delivered": "Delivered",
    "pending": "Waiting for the device to check in",
    "noDevice": "The user has no enrolled device yet",
    "rules": "Fails an applicability rule",
}
# A profile whose every result is one of these does not reach the user.
_NOT_REACHING = frozenset({NOT_TARGETED, EXCLUDED, str(DeliveryStatus.NOT_APPLICABLE)})


@contextmanager
def _planner_for_big_scans() -> Iterator[None]:
    """PostgreSQL's JIT compiles these wide CASE/EXISTS queries for longer than they run; skip it."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        yield


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


class Evaluation:
    """One profile's reach. Cheap to build; each method runs a few set-based queries."""

    def __init__(self, spec: TargetSpec, rivals: Sequence[TargetSpec]) -> None:
        self.spec = spec
        self.rivals = tuple(rivals)

    @cached_property
    def flags(self) -> Any:
        return device_flags(self.spec, self.rivals)

    def outcome(self, flags: int) -> Outcome:
        return outcome(flags)

    # Querysets ---------------------------------------------------------------

    def devices(self) -> QuerySet[Any]:
        """Every current device, annotated with ``flags``."""
        return Device.objects.filter(removed_at__isnull=True).annotate(flags=self.flags)

    def users_without_devices(self) -> QuerySet[Any]:
        """Current users with no current device, annotated with ``flags`` (user bits only)."""
        return users_without_devices(self.spec)

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
        return deviceless_outcome(flags)

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
        if reason == "platform":
            text = f"Platform is not {_PLATFORM_LABELS.get(spec.platform, spec.platform)}"
        else:
            text = _REASON_TEXTS.get(reason, reason)
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
    """A saved profile's evaluation; its specs and its rivals' are read in a fixed number of queries."""
    specs = load_specs([profile])
    spec = specs[profile.pk]
    return Evaluation(spec, specs.rivals(spec))


def evaluate_draft(spec: TargetSpec) -> Evaluation:
    """The evaluation of a profile not saved yet (the wizard's review step)."""
    specs = load_specs(also=[(spec.platform, spec.intended_purpose)])
    return Evaluation(spec, specs.rivals(spec))


# --- Per user ----------------------------------------------------------------


@dataclass
class UserDeviceResult:
    device: Device | None
    state: str
    reason: str

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)


@dataclass(frozen=True, slots=True)
class ProfileLabel:
    """What the user page shows of a profile (read without building a Profile)."""

    pk: int
    code: UUID
    name: str
    platform: str

    def get_platform_display(self) -> str:
        return _PLATFORM_LABELS.get(self.platform, self.platform)


@dataclass
class UserProfileResult:
    profile: Profile | ProfileLabel
    results: list[UserDeviceResult]

    @property
    def reaches(self) -> bool:
        return any(r.state not in _NOT_REACHING for r in self.results)

    @property
    def targeted(self) -> bool:
        return any(r.state != NOT_TARGETED for r in self.results)


def profiles_for_user(
    user_obj: DirectoryUser, *, profiles: QuerySet[Profile] | None = None
) -> list[UserProfileResult]:
    """Each profile with the user's devices and what it does on them: reaching ones first.

    Pass ``profiles=access.scoped(Profile.objects.all(), request.user)`` so an admin sees
    only the profiles their scope tags reach. Runs the same queries whatever the number
    of profiles: the specs (kept between changes, see :func:`profiles.specs.tenant_specs`) and
    the user's memberships are read once and evaluated in memory.
    """
    return _for_user(
        user_obj, list(Profile.objects.all() if profiles is None else profiles), explain_all=True
    )


def reaching_profiles_for_user(
    user_obj: DirectoryUser, profiles: QuerySet[Profile]
) -> tuple[list[UserProfileResult], int]:
    """The profiles among ``profiles`` that reach the user, with their reasons, and how many do not
    (the user page lists the first and counts the others): :func:`profiles_for_user`'s queries, with
    only the fields shown read of each profile and no reasons composed for the profiles not listed."""
    labels = [ProfileLabel(*row) for row in profiles.values_list("pk", "code", "name", "platform")]
    results = _for_user(user_obj, labels, explain_all=False)
    reaching = [r for r in results if r.reaches]
    return reaching, len(results) - len(reaching)


def _for_user(
    user_obj: DirectoryUser, chosen: Sequence[Profile | ProfileLabel], *, explain_all: bool
) -> list[UserProfileResult]:
    specs = tenant_specs()
    if any(profile.pk not in specs for profile in chosen):
        # Created after the specs were read: read them again with it.
        specs = load_specs(list(Profile.objects.filter(pk__in=[p.pk for p in chosen])))
    names = {pk: ref.name for pk, ref in specs.groups.items()}
    facts = UserFacts.load(user_obj)
    found = []
    for profile in chosen:
        spec = specs[profile.pk]
        rivals = specs.rivals(spec)
        outcomes: list[tuple[Device | None, Outcome]]
        if facts.devices:
            outcomes = [(d, outcome(flags_of(spec, rivals, d, facts))) for d in facts.devices]
        else:
            outcomes = [(None, deviceless_outcome(deviceless_flags(spec, facts)))]
        if not explain_all and all(o.state in _NOT_REACHING for _d, o in outcomes):
            found.append(UserProfileResult(profile, [UserDeviceResult(d, o.state, "") for d, o in outcomes]))
            continue
        evaluation = Evaluation(spec, rivals)
        results = []
        for device, result in outcomes:
            excluded = excluded_by(spec, facts, device, names) if result.state == EXCLUDED else ""
            text = evaluation.explain(result.reason, excluded_by=excluded, device=device)
            results.append(UserDeviceResult(device, result.state, text))
        found.append(UserProfileResult(profile, results))
    found.sort(key=lambda r: (not r.reaches, not r.targeted, r.profile.name.lower()))
    return found

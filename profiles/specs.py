"""What is evaluated: a profile's targeting as plain data, and loading it for many profiles at once.

Specs never query the database. :func:`load_specs` reads the profiles asked for, every
profile they can conflict with (same platform and intended purpose), their assignments,
applicability rules and groups in a fixed number of queries, so evaluating one profile
or fifty runs the same queries. :func:`tenant_specs` keeps every profile's spec in the
process between changes, for the pages that need all of them on every view.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Q

from directory.models import Device, Group, Platform, version_key
from profiles.models import ApplicabilityRule, Profile, ProfileAssignment


@dataclass(frozen=True)
class RuleSpec:
    rule_type: str
    os_property: str
    editions: tuple[str, ...] = ()
    min_version: str = ""
    max_version: str = ""

    @classmethod
    def of(cls, rule: ApplicabilityRule) -> RuleSpec:
        return cls(
            rule_type=rule.rule_type,
            os_property=rule.os_property,
            editions=tuple(rule.editions or ()),
            min_version=rule.min_version,
            max_version=rule.max_version,
        )

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
        """The same test as :meth:`holds_q`, in Python, for devices already loaded."""
        if self.os_property == ApplicabilityRule.Property.OS_EDITION:
            matches = device.os_edition in self.editions
        else:
            key = device.os_version_key
            matches = bool(key) and version_key(self.min_version) <= key <= version_key(self.max_version)
        return matches if self.rule_type == ApplicabilityRule.RuleType.INCLUDE else not matches


@dataclass(frozen=True)
class GroupRef:
    """What targeting needs to know about an assigned group."""

    kind: str
    name: str
    removed: bool = False

    @classmethod
    def of(cls, group: Group) -> GroupRef:
        return cls(group.kind, group.display_name, group.removed_at is not None)


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
        groups: Mapping[int, GroupRef],
        settings_key: tuple[Any, ...] = (),
        all_users: bool = False,
        all_devices: bool = False,
        include_group_ids: Iterable[int] = (),
        exclude_group_ids: Iterable[int] = (),
        rules: Sequence[RuleSpec] = (),
        profile_id: int | None = None,
    ) -> TargetSpec:
        """``groups`` describes the assigned groups; one missing from it no longer exists and is ignored."""
        include, exclude = set(include_group_ids), set(exclude_group_ids)

        def of(ids: set[int], kind: str) -> frozenset[int]:
            return frozenset(
                pk
                for pk in ids
                if (ref := groups.get(pk)) is not None and ref.kind == kind and not ref.removed
            )

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
            removed_group_ids=frozenset(
                pk for pk in include | exclude if (ref := groups.get(pk)) is not None and ref.removed
            ),
        )

    @classmethod
    def of(
        cls,
        profile: Profile,
        *,
        assignments: Iterable[tuple[int, str]],
        rules: Sequence[RuleSpec],
        groups: Mapping[int, GroupRef],
    ) -> TargetSpec:
        """A saved profile's spec, from its ``(group id, mode)`` assignments and its rules."""
        assigned = list(assignments)
        return cls.build(
            platform=profile.platform,
            intended_purpose=profile.intended_purpose,
            groups=groups,
            settings_key=profile.settings_key(),
            all_users=profile.all_users,
            all_devices=profile.all_devices,
            include_group_ids=[g for g, mode in assigned if mode == ProfileAssignment.Mode.INCLUDE],
            exclude_group_ids=[g for g, mode in assigned if mode == ProfileAssignment.Mode.EXCLUDE],
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


def conflicting_specs(spec: TargetSpec, candidates: Iterable[TargetSpec]) -> tuple[TargetSpec, ...]:
    """Other profiles of the same platform and purpose whose settings differ."""
    return tuple(
        other
        for other in candidates
        if other.platform == spec.platform
        and other.intended_purpose == spec.intended_purpose
        and (spec.profile_id is None or other.profile_id != spec.profile_id)
        and other.settings_key != tuple(spec.settings_key)
    )


@dataclass(frozen=True)
class ProfileSpecs:
    """Loaded specs by profile id, for the profiles asked for and every profile they can conflict with."""

    specs: Mapping[int, TargetSpec]
    groups: Mapping[int, GroupRef]
    # Rivals of saved profiles, found once: the specs are shared by every request of the process.
    _rivals: dict[int, tuple[TargetSpec, ...]] = field(default_factory=dict, compare=False, repr=False)

    def __getitem__(self, profile_id: int) -> TargetSpec:
        return self.specs[profile_id]

    def __contains__(self, profile_id: object) -> bool:
        return profile_id in self.specs

    def rivals(self, spec: TargetSpec) -> tuple[TargetSpec, ...]:
        if spec.profile_id is None or self.specs.get(spec.profile_id) is not spec:
            return conflicting_specs(spec, self.specs.values())
        found = self._rivals.get(spec.profile_id)
        if found is None:
            found = self._rivals[spec.profile_id] = conflicting_specs(spec, self.specs.values())
        return found


def load_specs(profiles: Iterable[Profile] = (), *, also: Iterable[tuple[str, str]] = ()) -> ProfileSpecs:
    """Specs of ``profiles`` and of every profile sharing a platform and intended purpose with them
    (or with a ``(platform, purpose)`` pair of ``also``), in four queries whatever their number.

    The given profile objects are used as they are; the others are read from the database.
    """
    wanted = list(profiles)
    keys = {(p.platform, p.intended_purpose) for p in wanted} | set(also)
    if not keys:
        return ProfileSpecs({}, {})
    same_key = Q()
    for platform, purpose in sorted(keys):
        same_key |= Q(platform=platform, intended_purpose=purpose)
    loaded = {p.pk: p for p in Profile.objects.filter(same_key)}
    loaded.update({p.pk: p for p in wanted})
    return _specs_of(list(loaded.values()))


def _specs_of(profiles: Sequence[Profile]) -> ProfileSpecs:
    ids = [p.pk for p in profiles]
    assignments: defaultdict[int, list[tuple[int, str]]] = defaultdict(list)
    rows = ProfileAssignment.objects.filter(profile_id__in=ids).order_by().values_list
    for profile_id, group_id, mode in rows("profile_id", "group_id", "mode"):
        assignments[profile_id].append((group_id, mode))
    rules: defaultdict[int, list[RuleSpec]] = defaultdict(list)
    for rule in ApplicabilityRule.objects.filter(profile_id__in=ids):
        rules[rule.profile_id].append(RuleSpec.of(rule))
    assigned = ProfileAssignment.objects.filter(profile_id__in=ids).values("group_id")
    groups = {
        pk: GroupRef(kind, name, removed_at is not None)
        for pk, kind, name, removed_at in Group.objects.filter(pk__in=assigned).values_list(
            "pk", "kind", "display_name", "removed_at"
        )
    }
    specs = {
        p.pk: TargetSpec.of(p, assignments=assignments[p.pk], rules=rules[p.pk], groups=groups)
        for p in profiles
    }
    return ProfileSpecs(specs, groups)


# Reused for at most this long even when nothing seen by _fingerprint() changed, so a write
# that slips past it (a bulk UPDATE of a profile column, a group renamed without touching
# updated_at) shows within a minute.
_TENANT_SPECS_MAX_AGE = 60.0

_tenant_specs: tuple[tuple[Any, ...], float, ProfileSpecs] | None = None


def _now() -> float:
    return time.monotonic()


def _fingerprint() -> tuple[Any, ...]:
    """What changes whenever a spec would: one query over the profile tables and the assigned groups.

    Profile edits save the profile (``updated_at``); assignments and rules are rewritten, so
    new rows raise the highest id and removed ones lower the count; an assigned group that is
    renamed or restored is saved (``updated_at``), one that is removed gains a ``removed_at``.
    """
    q = connection.ops.quote_name
    profile, assignment, rule, group = (
        q(model._meta.db_table) for model in (Profile, ProfileAssignment, ApplicabilityRule, Group)
    )
    assigned = f"{q('id')} IN (SELECT {q('group_id')} FROM {assignment})"
    sql = (
        f"SELECT (SELECT COUNT(*) FROM {profile}), (SELECT MAX({q('updated_at')}) FROM {profile}), "
        f"(SELECT COUNT(*) FROM {assignment}), (SELECT MAX({q('id')}) FROM {assignment}), "
        f"(SELECT COUNT(*) FROM {rule}), (SELECT MAX({q('id')}) FROM {rule}), "
        f"(SELECT COUNT(*) FROM {group} WHERE {assigned}), "
        f"(SELECT COUNT({q('removed_at')}) FROM {group} WHERE {assigned}), "
        f"(SELECT MAX({q('updated_at')}) FROM {group} WHERE {assigned})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    return (connection.alias, *(str(value) for value in row))


# When the fingerprint was last found unchanged (monotonic seconds), for ``tenant_specs(recheck_after=)``.
_tenant_specs_checked = 0.0


def tenant_specs(*, recheck_after: float = 0.0) -> ProfileSpecs:
    """Every profile's spec, with the groups they are assigned to.

    Built at most once per change of the profile tables or of an assigned group (and once a
    minute regardless) in each process; otherwise one cheap query tells that nothing changed.
    The specs are immutable and shared by the requests of the process. A caller that may act on
    specs a few seconds old (device check-ins, many a second) passes ``recheck_after`` and skips
    even that query for so long after the last one.
    """
    global _tenant_specs, _tenant_specs_checked
    now = _now()
    kept = _tenant_specs
    if kept is not None and recheck_after and now - _tenant_specs_checked < recheck_after:
        return kept[2]
    key = _fingerprint()
    _tenant_specs_checked = now
    if kept is not None and kept[0] == key and now - kept[1] < _TENANT_SPECS_MAX_AGE:
        return kept[2]
    # Read after the fingerprint: a change committed in between is in the specs and shows
    # as a new fingerprint on the next call, so specs are never older than their key.
    specs = _specs_of(list(Profile.objects.all()))
    _tenant_specs = (key, now, specs)
    return specs


def tenant_specs_version(specs: ProfileSpecs) -> tuple[Any, ...] | None:
    """What the database looked like when ``specs`` (from :func:`tenant_specs`) were read: equal
    versions mean equal specs, in any process. None for specs no longer kept."""
    kept = _tenant_specs
    return kept[0] if kept is not None and kept[2] is specs else None


def forget_tenant_specs() -> None:
    """Drop the kept specs (tests whose data is rolled back between them)."""
    global _tenant_specs
    _tenant_specs = None

"""Every change to a profile: atomic, validated, and audited in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction

from directory.models import Group, Platform
from portal import access, audit
from portal.audit import Actor
from portal.lib import refusal
from portal.lib.refusal import Refused
from portal.models import AuditEvent, ScopeTag, User
from profiles.hooks import profile_changed, profile_deleting
from profiles.models import ApplicabilityRule, CertificateAccess, Profile, ProfileAssignment
from profiles.specs import RuleSpec

CATEGORY = "Device configuration"
AUDITED_FIELDS = (
    "name",
    "description",
    "platform",
    "profile_type",
    "intended_purpose",
    "key_storage_provider",
    "certificate_access",
    "silent_access_packages",
    "all_users",
    "all_devices",
    "scope_tags",
)


@dataclass(frozen=True)
class ProfileDraft:
    """Everything the creation wizard collects."""

    platform: str
    name: str
    intended_purpose: str
    description: str = ""
    key_storage_provider: str = ""
    certificate_access: str = ""
    silent_access_packages: tuple[str, ...] = ()
    scope_tags: tuple[ScopeTag, ...] = ()
    all_users: bool = False
    all_devices: bool = False
    include_groups: tuple[Group, ...] = ()
    exclude_groups: tuple[Group, ...] = ()
    rules: tuple[RuleSpec, ...] = field(default=())

    @property
    def has_assignments(self) -> bool:
        return self.all_users or self.all_devices or bool(self.include_groups) or bool(self.exclude_groups)


def _snapshot(profile: Profile) -> dict[str, Any]:
    values = audit.snapshot(profile, AUDITED_FIELDS)
    values["assignments"] = sorted(str(a) for a in profile.assignments.select_related("group"))
    values["applicability_rules"] = [r.describe() for r in profile.applicability_rules.all()]
    return values


def _record(actor: Actor, activity: str, operation: str, profile: Profile, before: dict[str, Any]) -> None:
    after = _snapshot(profile) if operation != AuditEvent.Operation.DELETE else {}
    if operation == AuditEvent.Operation.DELETE:
        changed = [{"field": k, "old": v, "new": None} for k, v in before.items()]
    else:
        changed = audit.changes(before, after)
    audit.record(
        actor,
        activity=activity,
        category=CATEGORY,
        operation=operation,
        resources=[audit.resource(profile, type="PKCS imported certificate profile", changes=changed)],
    )


def _settings_for_platform(profile: Profile) -> None:
    """Blank the settings a platform does not have, so they never leak into conflict checks."""
    if profile.platform != Platform.WINDOWS:
        profile.key_storage_provider = ""
    if profile.platform != Platform.ANDROID_FULLY_MANAGED:
        profile.certificate_access = ""
        profile.silent_access_packages = []
    elif profile.certificate_access != CertificateAccess.SPECIFIC_APPS:
        profile.silent_access_packages = []


def _check_admin_can_assign(actor: Actor) -> None:
    if actor.user is not None and not access.has_perm(actor.user, "profiles.assign"):
        raise PermissionDenied("Assigning profiles needs the Assign permission.")


def _write_assignments(
    profile: Profile, include: Iterable[Group], exclude: Iterable[Group], all_users: bool, all_devices: bool
) -> None:
    include, exclude = list(include), list(exclude)
    if {g.pk for g in include} & {g.pk for g in exclude}:
        raise Refused("group_included_and_excluded", "A group cannot be both included and excluded.")
    profile.all_users, profile.all_devices = all_users, all_devices
    profile.save(update_fields=["all_users", "all_devices", "updated_at"])
    profile.assignments.all().delete()
    ProfileAssignment.objects.bulk_create(
        [ProfileAssignment(profile=profile, group=g, mode=ProfileAssignment.Mode.INCLUDE) for g in include]
        + [ProfileAssignment(profile=profile, group=g, mode=ProfileAssignment.Mode.EXCLUDE) for g in exclude]
    )


def _write_rules(profile: Profile, rules: Sequence[RuleSpec]) -> None:
    profile.applicability_rules.all().delete()
    if profile.platform != Platform.WINDOWS:
        return
    for position, spec in enumerate(rules):
        rule = ApplicabilityRule(
            profile=profile,
            position=position,
            rule_type=spec.rule_type,
            os_property=spec.os_property,
            editions=list(spec.editions) if spec.os_property == ApplicabilityRule.Property.OS_EDITION else [],
            min_version=spec.min_version if spec.os_property == ApplicabilityRule.Property.OS_VERSION else "",
            max_version=spec.max_version if spec.os_property == ApplicabilityRule.Property.OS_VERSION else "",
        )
        refusal.full_clean(rule, exclude=["profile"])
        rule.save()


@transaction.atomic
def profile_create(*, actor: Actor, draft: ProfileDraft) -> Profile:
    if actor.user is not None and not access.has_perm(actor.user, "profiles.create"):
        raise PermissionDenied
    if draft.has_assignments:
        _check_admin_can_assign(actor)
    profile = Profile(
        name=draft.name.strip(),
        description=draft.description.strip(),
        platform=draft.platform,
        intended_purpose=draft.intended_purpose,
        key_storage_provider=draft.key_storage_provider,
        certificate_access=draft.certificate_access,
        silent_access_packages=list(draft.silent_access_packages),
        created_by=actor.user,
    )
    _settings_for_platform(profile)
    refusal.full_clean(profile)
    profile.save()
    if actor.user is None and draft.scope_tags:
        # The system (demo seeding, migrations) is not bound by an admin's tags.
        profile.scope_tags.set(draft.scope_tags)
    else:
        profile.scope_tags.set(
            access.creator_tags(actor.user or AnonymousUser(), "profiles", draft.scope_tags)
        )
    _write_assignments(
        profile, draft.include_groups, draft.exclude_groups, draft.all_users, draft.all_devices
    )
    _write_rules(profile, draft.rules)
    _record(actor, "Create PKCS imported certificate profile", AuditEvent.Operation.CREATE, profile, {})
    profile_changed.send(Profile, profile=profile)
    return profile


@transaction.atomic
def profile_update_basics(*, actor: Actor, profile: Profile, name: str, description: str) -> Profile:
    before = _snapshot(profile)
    profile.name, profile.description = name.strip(), description.strip()
    refusal.full_clean(profile)
    profile.save(update_fields=["name", "description", "updated_at"])
    _record(actor, "Update profile basics", AuditEvent.Operation.UPDATE, profile, before)
    profile_changed.send(Profile, profile=profile)
    return profile


@transaction.atomic
def profile_update_settings(
    *, actor: Actor, profile: Profile, certificate_access: str, silent_access_packages: Sequence[str]
) -> Profile:
    """Only certificate access can change: intended purpose and KSP are fixed at creation."""
    before = _snapshot(profile)
    profile.certificate_access = certificate_access
    profile.silent_access_packages = list(silent_access_packages)
    _settings_for_platform(profile)
    refusal.full_clean(profile)
    profile.save(update_fields=["certificate_access", "silent_access_packages", "updated_at"])
    _record(actor, "Update profile configuration settings", AuditEvent.Operation.UPDATE, profile, before)
    profile_changed.send(Profile, profile=profile)
    return profile


@transaction.atomic
def profile_set_scope_tags(
    *, actor: Actor, admin: User, profile: Profile, tags: Iterable[ScopeTag]
) -> Profile:
    """Set the tags the admin holds; tags they do not hold stay as they were."""
    before = _snapshot(profile)
    held = {t.pk for t in access.held_tags(admin, "profiles.update")}
    chosen = {t.pk for t in tags if t.pk in held}
    kept = {t.pk for t in profile.scope_tags.all() if t.pk not in held}
    final = chosen | kept
    if not final:
        if access.tag_limit(admin, "profiles.update") is not None:
            raise Refused("scope_tag_required", "Keep at least one of your scope tags on the profile.")
        final = {ScopeTag.default().pk}
    profile.scope_tags.set(ScopeTag.objects.filter(pk__in=final))
    profile.save(update_fields=["updated_at"])
    _record(actor, "Update profile scope tags", AuditEvent.Operation.UPDATE, profile, before)
    profile_changed.send(Profile, profile=profile)
    return profile


@transaction.atomic
def profile_set_assignments(
    *,
    actor: Actor,
    profile: Profile,
    all_users: bool,
    all_devices: bool,
    include: Iterable[Group],
    exclude: Iterable[Group],
) -> Profile:
    _check_admin_can_assign(actor)
    before = _snapshot(profile)
    _write_assignments(profile, include, exclude, all_users, all_devices)
    _record(actor, "Update profile assignments", AuditEvent.Operation.UPDATE, profile, before)
    profile_changed.send(Profile, profile=profile)
    return profile


@transaction.atomic
def profile_set_rules(*, actor: Actor, profile: Profile, rules: Sequence[RuleSpec]) -> Profile:
    if profile.platform != Platform.WINDOWS and rules:
        raise Refused(
            "rules_windows_only", "Applicability rules apply to Windows 10 and later profiles only."
        )
    before = _snapshot(profile)
    _write_rules(profile, rules)
    profile.save(update_fields=["updated_at"])
    _record(actor, "Update profile applicability rules", AuditEvent.Operation.UPDATE, profile, before)
    profile_changed.send(Profile, profile=profile)
    return profile


@transaction.atomic
def profile_delete(*, actor: Actor, profile: Profile) -> None:
    before = _snapshot(profile)
    _record(actor, "Delete PKCS imported certificate profile", AuditEvent.Operation.DELETE, profile, before)
    profile_deleting.send(Profile, profile=profile)
    profile.delete()


@transaction.atomic
def profile_duplicate(
    *, actor: Actor, profile: Profile, name: str, description: str | None = None
) -> Profile:
    """A copy with the same settings, tags, assignments and rules (delivery state is not copied)."""
    if actor.user is not None and not access.has_perm(actor.user, "profiles.create"):
        raise PermissionDenied
    copy = Profile(
        name=name.strip(),
        description=profile.description if description is None else description.strip(),
        platform=profile.platform,
        profile_type=profile.profile_type,
        intended_purpose=profile.intended_purpose,
        key_storage_provider=profile.key_storage_provider,
        certificate_access=profile.certificate_access,
        silent_access_packages=list(profile.silent_access_packages or []),
        all_users=profile.all_users,
        all_devices=profile.all_devices,
        created_by=actor.user,
    )
    refusal.full_clean(copy)
    copy.save()
    copy.scope_tags.set(profile.scope_tags.all())
    ProfileAssignment.objects.bulk_create(
        ProfileAssignment(profile=copy, group_id=a.group_id, mode=a.mode) for a in profile.assignments.all()
    )
    for rule in profile.applicability_rules.all():
        rule.pk = None
        rule.profile = copy
        rule.save()
    audit.record(
        actor,
        activity="Duplicate PKCS imported certificate profile",
        category=CATEGORY,
        operation=AuditEvent.Operation.CREATE,
        resources=[
            audit.resource(
                copy, type="PKCS imported certificate profile", changes=audit.changes({}, _snapshot(copy))
            ),
            audit.resource(profile, type="PKCS imported certificate profile (source)"),
        ],
    )
    profile_changed.send(Profile, profile=copy)
    return copy

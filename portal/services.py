"""Changes to roles, role assignments, scope tags and administrators.

Each function is one transaction that makes the change and writes its audit
event, so both exist or neither does. Mail leaves the process only after commit.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.apps import apps
from django.conf import settings
from django.core.mail import send_mail
from django.db import models, transaction
from django.template.loader import render_to_string
from django.urls import reverse

from portal import access, audit, rbac
from portal.audit import Actor
from portal.lib import refusal
from portal.lib.refusal import Refused
from portal.models import AuditEvent, Role, RoleAssignment, ScopeTag, ScopeTagged, User

ROLE_CATEGORY = "Role"
TAG_CATEGORY = "Scope tag"

ROLE_FIELDS = ("name", "description", "permissions", "requires_mfa")
ASSIGNMENT_FIELDS = ("name", "description", "role", "members", "scope_tags")
TAG_FIELDS = ("name", "description")
ADMIN_FIELDS = ("email", "display_name", "role_assignments")

Op = AuditEvent.Operation


# --- Guards against privilege escalation ------------------------------------------------------


def _check_can_grant(actor: Actor, permissions: Iterable[str]) -> None:
    """An admin can hand out only permissions they hold themselves (superusers hold them all)."""
    if actor.user is None:
        return  # the system itself (seeding, migrations)
    held = access.permissions(actor.user)
    missing = [p for p in permissions if p not in held]
    if missing:
        raise Refused(
            "permission_not_held",
            f"You can't grant permissions you don't hold yourself: {', '.join(missing)}.",
        )


def mfa_change_blockers(user: User | None, permissions: Iterable[str]) -> list[str]:
    """The permissions ``user`` lacks to switch the MFA requirement of a role granting ``permissions``.

    Turning the requirement off weakens every permission the role grants, so it takes what granting
    them would: holding them all. Turning it on is held to the same rule.
    """
    if user is None:
        return []  # the system itself (seeding, migrations)
    held = access.permissions(user)
    return sorted(p for p in set(permissions) if p not in held)


def _check_can_change_mfa(actor: Actor, permissions: Iterable[str]) -> None:
    missing = mfa_change_blockers(actor.user, permissions)
    if missing:
        message = (
            "You can change the authenticator requirement only on a role whose permissions you all hold "
            f"yourself. You don't hold: {', '.join(missing)}."
        )
        raise Refused("mfa_change_needs_every_permission", message, field="requires_mfa")


def _check_can_give_tags(actor: Actor, tags: Iterable[ScopeTag]) -> None:
    """An admin limited to scope tags can give only those tags, and can't lift the limit."""
    if actor.user is None or actor.user.is_superuser:
        return
    held = access.tag_limit(actor.user, "roles.assign")
    if held is None:
        return  # one of the assignments that let them assign has no tags: no limit
    chosen = {t.pk for t in tags}
    if not chosen:
        raise Refused(
            "scope_tag_required",
            "Choose at least one scope tag: you are limited to your own tags.",
            field="scope_tags",
        )
    if not chosen <= held:
        raise Refused(
            "scope_tag_not_held", "You can only give scope tags that you hold yourself.", field="scope_tags"
        )


def _normalise(permissions: Iterable[str]) -> list[str]:
    """Known permissions only, in catalogue order, so old and new values compare cleanly."""
    chosen = set(permissions)
    unknown = sorted(p for p in chosen if not rbac.is_permission(p))
    if unknown:
        raise Refused("unknown_permission", f"Unknown permissions: {', '.join(unknown)}", field="permissions")
    return [p for p in rbac.ALL_PERMISSIONS if p in chosen]


def _forget(actor: Actor) -> None:
    if actor.user is not None:
        access.forget(actor.user)


# --- Roles ------------------------------------------------------------------------------------


@transaction.atomic
def role_create(
    *, actor: Actor, name: str, description: str = "", permissions: Iterable[str], requires_mfa: bool = False
) -> Role:
    perms = _normalise(permissions)
    _check_can_grant(actor, perms)
    role = Role(
        name=name.strip(), description=description.strip(), permissions=perms, requires_mfa=requires_mfa
    )
    refusal.full_clean(role)
    role.save()
    after = audit.snapshot(role, ROLE_FIELDS)
    audit.record(
        actor,
        activity="Create role",
        category=ROLE_CATEGORY,
        operation=Op.CREATE,
        resources=[audit.resource(role, type="Role", changes=audit.changes({}, after))],
    )
    return role


@transaction.atomic
def role_update(
    *, actor: Actor, role: Role, name: str, description: str, permissions: Iterable[str], requires_mfa: bool
) -> Role:
    role = Role.objects.select_for_update().get(pk=role.pk)
    if role.is_built_in:
        raise Refused(
            "built_in_role", "Built-in roles can't be changed. Duplicate the role to make a custom one."
        )
    perms = _normalise(permissions)
    _check_can_grant(actor, set(perms) - set(role.permissions))
    if requires_mfa != role.requires_mfa:
        _check_can_change_mfa(actor, set(role.permissions) | set(perms))
    before = audit.snapshot(role, ROLE_FIELDS)
    role.name, role.description = name.strip(), description.strip()
    role.permissions, role.requires_mfa = perms, requires_mfa
    refusal.full_clean(role)
    role.save()
    after = audit.snapshot(role, ROLE_FIELDS)
    audit.record(
        actor,
        activity="Update role",
        category=ROLE_CATEGORY,
        operation=Op.UPDATE,
        resources=[audit.resource(role, type="Role", changes=audit.changes(before, after))],
    )
    _forget(actor)
    return role


@transaction.atomic
def role_delete(*, actor: Actor, role: Role) -> None:
    role = Role.objects.select_for_update().get(pk=role.pk)
    if role.is_built_in:
        raise Refused("built_in_role", "Built-in roles can't be deleted.")
    in_use = role.assignments.count()
    if in_use:
        raise Refused(
            "role_in_use",
            f"“{role.name}” has {in_use} assignment{'s' if in_use != 1 else ''}. Delete them before the role.",
        )
    before = audit.snapshot(role, ROLE_FIELDS)
    gone = audit.resource(role, type="Role", changes=audit.changes(before, dict.fromkeys(before)))
    role.delete()
    audit.record(actor, activity="Delete role", category=ROLE_CATEGORY, operation=Op.DELETE, resources=[gone])


# --- Role assignments -------------------------------------------------------------------------


@transaction.atomic
def assignment_create(
    *,
    actor: Actor,
    role: Role,
    name: str,
    description: str = "",
    members: Iterable[User] = (),
    scope_tags: Iterable[ScopeTag] = (),
) -> RoleAssignment:
    members, scope_tags = list(members), list(scope_tags)
    if members:
        _check_can_grant(actor, role.permissions)
    _check_can_give_tags(actor, scope_tags)
    assignment = RoleAssignment(role=role, name=name.strip(), description=description.strip())
    refusal.full_clean(assignment)
    assignment.save()
    assignment.members.set(members)
    assignment.scope_tags.set(scope_tags)
    after = audit.snapshot(assignment, ASSIGNMENT_FIELDS)
    audit.record(
        actor,
        activity="Create role assignment",
        category=ROLE_CATEGORY,
        operation=Op.CREATE,
        resources=[audit.resource(assignment, type="Role assignment", changes=audit.changes({}, after))],
    )
    _forget(actor)
    return assignment


@transaction.atomic
def assignment_update(
    *,
    actor: Actor,
    assignment: RoleAssignment,
    name: str,
    description: str,
    members: Iterable[User],
    scope_tags: Iterable[ScopeTag],
) -> RoleAssignment:
    assignment = RoleAssignment.objects.select_for_update().select_related("role").get(pk=assignment.pk)
    members, scope_tags = list(members), list(scope_tags)
    before = audit.snapshot(assignment, ASSIGNMENT_FIELDS)
    current_members = set(assignment.members.values_list("pk", flat=True))
    if {m.pk for m in members} - current_members:
        _check_can_grant(actor, assignment.role.permissions)
    if {t.pk for t in scope_tags} != set(assignment.scope_tags.values_list("pk", flat=True)):
        _check_can_give_tags(actor, scope_tags)
    assignment.name, assignment.description = name.strip(), description.strip()
    refusal.full_clean(assignment)
    assignment.save()
    assignment.members.set(members)
    assignment.scope_tags.set(scope_tags)
    after = audit.snapshot(assignment, ASSIGNMENT_FIELDS)
    audit.record(
        actor,
        activity="Update role assignment",
        category=ROLE_CATEGORY,
        operation=Op.UPDATE,
        resources=[audit.resource(assignment, type="Role assignment", changes=audit.changes(before, after))],
    )
    _forget(actor)
    return assignment


@transaction.atomic
def assignment_delete(*, actor: Actor, assignment: RoleAssignment) -> None:
    assignment = RoleAssignment.objects.select_for_update().select_related("role").get(pk=assignment.pk)
    before = audit.snapshot(assignment, ASSIGNMENT_FIELDS)
    gone = audit.resource(
        assignment, type="Role assignment", changes=audit.changes(before, dict.fromkeys(before))
    )
    assignment.delete()
    audit.record(
        actor,
        activity="Delete role assignment",
        category=ROLE_CATEGORY,
        operation=Op.DELETE,
        resources=[gone],
    )
    _forget(actor)


# --- Scope tags -------------------------------------------------------------------------------


def tag_usage(tag: ScopeTag) -> tuple[int, int]:
    """How many role assignments, and how many tagged objects (in any app), carry ``tag``."""
    objects = 0
    for model in apps.get_models():
        if issubclass(model, ScopeTagged):
            field = model._meta.get_field("scope_tags")
            assert isinstance(field, models.ManyToManyField)
            through = field.remote_field.through
            assert through is not None
            objects += through._default_manager.filter(scopetag_id=tag.pk).count()
    return tag.role_assignments.count(), objects


@transaction.atomic
def scope_tag_create(*, actor: Actor, name: str, description: str = "") -> ScopeTag:
    tag = ScopeTag(name=name.strip(), description=description.strip())
    refusal.full_clean(tag)
    tag.save()
    after = audit.snapshot(tag, TAG_FIELDS)
    audit.record(
        actor,
        activity="Create scope tag",
        category=TAG_CATEGORY,
        operation=Op.CREATE,
        resources=[audit.resource(tag, type="Scope tag", changes=audit.changes({}, after))],
    )
    return tag


@transaction.atomic
def scope_tag_update(*, actor: Actor, tag: ScopeTag, name: str, description: str) -> ScopeTag:
    tag = ScopeTag.objects.select_for_update().get(pk=tag.pk)
    if tag.is_default and name.strip() != tag.name:
        raise Refused("default_tag", "The Default tag keeps its name.", field="name")
    before = audit.snapshot(tag, TAG_FIELDS)
    tag.name, tag.description = name.strip(), description.strip()
    refusal.full_clean(tag)
    tag.save()
    after = audit.snapshot(tag, TAG_FIELDS)
    audit.record(
        actor,
        activity="Update scope tag",
        category=TAG_CATEGORY,
        operation=Op.UPDATE,
        resources=[audit.resource(tag, type="Scope tag", changes=audit.changes(before, after))],
    )
    return tag


@transaction.atomic
def scope_tag_delete(*, actor: Actor, tag: ScopeTag) -> None:
    tag = ScopeTag.objects.select_for_update().get(pk=tag.pk)
    if tag.is_default:
        raise Refused("default_tag", "The Default tag can't be deleted: untagged objects carry it.")
    assignments, objects = tag_usage(tag)
    if assignments or objects:
        used = []
        if assignments:
            used.append(f"{assignments} role assignment{'s' if assignments != 1 else ''}")
        if objects:
            used.append(f"{objects} object{'s' if objects != 1 else ''}")
        raise Refused(
            "scope_tag_in_use", f"“{tag.name}” is in use by {' and '.join(used)}. Remove it from them first."
        )
    before = audit.snapshot(tag, TAG_FIELDS)
    gone = audit.resource(tag, type="Scope tag", changes=audit.changes(before, dict.fromkeys(before)))
    tag.delete()
    audit.record(
        actor, activity="Delete scope tag", category=TAG_CATEGORY, operation=Op.DELETE, resources=[gone]
    )


# --- Administrators ---------------------------------------------------------------------------


def set_password_url(user: User) -> str:
    """A one-time link to allauth's password reset form, valid for PASSWORD_RESET_TIMEOUT."""
    from allauth.account.forms import default_token_generator
    from allauth.account.utils import user_pk_to_url_str

    path = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": default_token_generator.make_token(user)},
    )
    return f"{settings.SITE_URL}{path}"


def _send_invitation(user: User, inviter: str) -> None:
    context = {"user": user, "inviter": inviter, "url": set_password_url(user), "site_url": settings.SITE_URL}
    subject = render_to_string("portal/roles/email/invite_subject.txt", context).strip()
    body = render_to_string("portal/roles/email/invite_message.txt", context)
    send_mail(settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + subject, body, None, [user.email])


@transaction.atomic
def admin_invite(
    *, actor: Actor, email: str, display_name: str = "", assignments: Iterable[RoleAssignment] = ()
) -> User:
    """Create an administrator without a password and mail them a link to set one."""
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise Refused(
            "admin_exists", "An administrator with this e-mail address already exists.", field="email"
        )
    assignments = list(assignments)
    for assignment in assignments:
        _check_can_grant(actor, assignment.role.permissions)
    user = User(email=email, display_name=display_name.strip(), invited_by=actor.user)
    user.set_unusable_password()
    refusal.full_clean(user)
    user.save()
    for assignment in assignments:
        assignment.members.add(user)
    after = audit.snapshot(user, ADMIN_FIELDS)
    audit.record(
        actor,
        activity="Invite administrator",
        category=ROLE_CATEGORY,
        operation=Op.CREATE,
        resources=[audit.resource(user, type="Administrator", changes=audit.changes({}, after))],
    )
    transaction.on_commit(lambda: _send_invitation(user, actor.name))
    return user


def admin_resend_invite(*, actor: Actor, user: User) -> None:
    """Mail a fresh set-password link to an administrator who has not set a password yet."""
    if user.has_usable_password():
        raise Refused("password_already_set", "This administrator has already set a password.")
    with transaction.atomic():
        audit.record(
            actor,
            activity="Resend administrator invitation",
            category=ROLE_CATEGORY,
            operation=Op.ACTION,
            resources=[audit.resource(user, type="Administrator")],
        )
        transaction.on_commit(lambda: _send_invitation(user, actor.name))

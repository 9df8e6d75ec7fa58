"""Services for roles, role assignments, scope tags and invitations, called directly."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from portal import access, services
from portal.audit import Actor
from portal.lib.refusal import Refused
from portal.models import AuditEvent, Role, RoleAssignment, ScopeTag, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def role_admin(make_admin: Callable[..., User]) -> User:
    return make_admin("intune_role_administrator")


@pytest.fixture
def actor(role_admin: User) -> Actor:
    return Actor.for_user(role_admin, ip="192.0.2.10")


def _last_event() -> AuditEvent:
    event = AuditEvent.objects.first()
    assert event is not None
    return event


def _changes(event: AuditEvent) -> dict[str, tuple[object, object]]:
    return {c["field"]: (c["old"], c["new"]) for c in event.resources[0]["changes"]}


# --- Roles ------------------------------------------------------------------------------------


def test_it_creates_a_custom_role_and_records_its_fields(actor: Actor) -> None:
    role = services.role_create(
        actor=actor, name=" Tier 2 ", permissions=["roles.read", "audit.read"], requires_mfa=True
    )
    assert role.name == "Tier 2"
    assert role.permissions == ["audit.read", "roles.read"]  # catalogue order
    event = _last_event()
    assert (event.activity, event.category, event.operation) == ("Create role", "Role", "create")
    assert event.actor_name == actor.name and event.actor_ip == "192.0.2.10"
    assert _changes(event)["permissions"] == (None, ["audit.read", "roles.read"])
    assert event.resources[0]["id"] == str(role.code)


def test_it_refuses_to_grant_permissions_the_actor_does_not_hold(actor: Actor) -> None:
    with pytest.raises(Refused, match=r"certificates\.delete"):
        services.role_create(actor=actor, name="Cert cleaner", permissions=["certificates.delete"])
    assert not Role.objects.filter(name="Cert cleaner").exists()
    assert not AuditEvent.objects.exists()


def test_a_superuser_may_grant_any_permission(db: None) -> None:
    root = User.objects.create_superuser(email="root@contoso.example", password="x" * 20)
    role = services.role_create(
        actor=Actor.for_user(root), name="Everything", permissions=["certificates.delete"]
    )
    assert role.permissions == ["certificates.delete"]


def test_it_refuses_unknown_permissions(actor: Actor) -> None:
    with pytest.raises(Refused, match="Unknown permissions"):
        services.role_create(actor=actor, name="Odd", permissions=["roles.read", "portal.superuser"])


def test_built_in_roles_are_read_only(actor: Actor, built_in_roles: dict[str, Role]) -> None:
    role = built_in_roles["read_only_operator"]
    with pytest.raises(Refused, match="Built-in roles can't be changed"):
        services.role_update(
            actor=actor,
            role=role,
            name="Mine",
            description="",
            permissions=["roles.read"],
            requires_mfa=False,
        )
    with pytest.raises(Refused, match="can't be deleted"):
        services.role_delete(actor=actor, role=role)
    role.refresh_from_db()
    assert role.name == "Read Only Operator"


def test_it_updates_a_custom_role_with_old_and_new_values(actor: Actor) -> None:
    role = services.role_create(actor=actor, name="Auditors", permissions=["audit.read"])
    services.role_update(
        actor=actor,
        role=role,
        name="Auditors",
        description="Read the log",
        permissions=["audit.read", "roles.read"],
        requires_mfa=False,
    )
    event = _last_event()
    assert event.activity == "Update role"
    assert _changes(event) == {
        "description": ("", "Read the log"),
        "permissions": (["audit.read"], ["audit.read", "roles.read"]),
    }


def test_removing_a_permission_the_actor_lacks_is_allowed(actor: Actor) -> None:
    role = Role.objects.create(name="Legacy", permissions=["certificates.read", "audit.read"])
    services.role_update(
        actor=actor, role=role, name="Legacy", description="", permissions=["audit.read"], requires_mfa=False
    )
    role.refresh_from_db()
    assert role.permissions == ["audit.read"]


def test_a_role_administrator_cannot_switch_off_mfa_on_a_role_holding_permissions_they_lack(
    actor: Actor,
) -> None:
    role = Role.objects.create(
        name="Cert admins", permissions=["certificates.read", "certificates.delete"], requires_mfa=True
    )
    with pytest.raises(Refused) as refused:
        services.role_update(
            actor=actor,
            role=role,
            name="Cert admins",
            description="",
            permissions=["certificates.read", "certificates.delete"],
            requires_mfa=False,
        )
    assert refused.value.code == "mfa_change_needs_every_permission"
    assert refused.value.field == "requires_mfa"
    assert "certificates.delete, certificates.read" in str(refused.value)
    role.refresh_from_db()
    assert role.requires_mfa is True
    assert not AuditEvent.objects.exists()


def test_removing_the_permissions_in_the_same_change_does_not_unlock_the_mfa_switch(actor: Actor) -> None:
    role = Role.objects.create(
        name="Cert admins", permissions=["certificates.delete", "audit.read"], requires_mfa=True
    )
    with pytest.raises(Refused, match=r"certificates\.delete"):
        services.role_update(
            actor=actor,
            role=role,
            name="Cert admins",
            description="",
            permissions=["audit.read"],
            requires_mfa=False,
        )
    role.refresh_from_db()
    assert (role.requires_mfa, role.permissions) == (True, ["certificates.delete", "audit.read"])


def test_the_mfa_requirement_changes_when_the_actor_holds_every_permission_of_the_role(actor: Actor) -> None:
    role = services.role_create(actor=actor, name="Auditors", permissions=["audit.read"], requires_mfa=True)
    services.role_update(
        actor=actor,
        role=role,
        name="Auditors",
        description="",
        permissions=["audit.read"],
        requires_mfa=False,
    )
    role.refresh_from_db()
    assert role.requires_mfa is False
    assert _changes(_last_event()) == {"requires_mfa": (True, False)}


def test_it_refuses_to_delete_a_role_that_is_assigned(actor: Actor, role_admin: User) -> None:
    role = services.role_create(actor=actor, name="Auditors", permissions=["audit.read"])
    services.assignment_create(actor=actor, role=role, name="Everyone", members=[role_admin])
    with pytest.raises(Refused, match="has 1 assignment"):
        services.role_delete(actor=actor, role=role)
    assert Role.objects.filter(pk=role.pk).exists()


def test_it_deletes_an_unassigned_custom_role(actor: Actor) -> None:
    role = services.role_create(actor=actor, name="Auditors", permissions=["audit.read"])
    services.role_delete(actor=actor, role=role)
    assert not Role.objects.filter(pk=role.pk).exists()
    event = _last_event()
    assert (event.activity, event.operation) == ("Delete role", "delete")
    assert _changes(event)["name"] == ("Auditors", None)


# --- Role assignments -------------------------------------------------------------------------


def test_it_creates_an_assignment_with_members_and_tags(
    actor: Actor,
    built_in_roles: dict[str, Role],
    make_tag: Callable[[str], ScopeTag],
    make_admin: Callable[..., User],
) -> None:
    member = make_admin(email="member@contoso.example")
    paris = make_tag("Paris")
    assignment = services.assignment_create(
        actor=actor,
        role=built_in_roles["intune_role_administrator"],
        name="Paris role admins",
        members=[member],
        scope_tags=[paris],
    )
    assert list(assignment.members.all()) == [member]
    assert access.has_perm(member, "roles.assign")
    changes = _changes(_last_event())
    assert changes["members"] == (None, ["member"])
    assert changes["scope_tags"] == (None, ["Paris"])
    assert changes["role"] == (None, "Intune Role Administrator")


def test_a_role_administrator_cannot_assign_a_role_with_more_than_they_hold(
    actor: Actor, built_in_roles: dict[str, Role], make_admin: Callable[..., User], role_admin: User
) -> None:
    with pytest.raises(Refused, match="certificates"):
        services.assignment_create(
            actor=actor, role=built_in_roles["intune_administrator"], name="Escalate", members=[role_admin]
        )
    assert not access.has_perm(role_admin, "certificates.delete")
    assert not RoleAssignment.objects.filter(name="Escalate").exists()


def test_a_tagged_role_administrator_gives_only_their_own_tags(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], built_in_roles: dict[str, Role]
) -> None:
    paris, oslo = make_tag("Paris"), make_tag("Oslo")
    tagged = Actor.for_user(make_admin("intune_role_administrator", tags=[paris]))
    role = built_in_roles["read_only_operator"]
    with pytest.raises(Refused, match="only give scope tags that you hold"):
        services.assignment_create(actor=tagged, role=role, name="Oslo", scope_tags=[oslo])
    with pytest.raises(Refused, match="at least one scope tag"):
        services.assignment_create(actor=tagged, role=role, name="Everything", scope_tags=[])
    services.assignment_create(actor=tagged, role=role, name="Paris", scope_tags=[paris])


def test_it_updates_members_and_tags_with_old_and_new_values(
    actor: Actor,
    built_in_roles: dict[str, Role],
    make_tag: Callable[[str], ScopeTag],
    make_admin: Callable[..., User],
) -> None:
    ann, bob = make_admin(email="ann@contoso.example"), make_admin(email="bob@contoso.example")
    assignment = services.assignment_create(
        actor=actor, role=built_in_roles["intune_role_administrator"], name="Team", members=[ann]
    )
    services.assignment_update(
        actor=actor,
        assignment=assignment,
        name="Team",
        description="",
        members=[bob],
        scope_tags=[make_tag("Paris")],
    )
    assert access.has_perm(bob, "roles.read") and not access.has_perm(ann, "roles.read")
    assert _changes(_last_event()) == {"members": (["ann"], ["bob"]), "scope_tags": ([], ["Paris"])}


def test_it_deletes_an_assignment(
    actor: Actor, built_in_roles: dict[str, Role], make_admin: Callable[..., User]
) -> None:
    ann = make_admin(email="ann@contoso.example")
    assignment = services.assignment_create(
        actor=actor, role=built_in_roles["intune_role_administrator"], name="Team", members=[ann]
    )
    services.assignment_delete(actor=actor, assignment=assignment)
    assert not access.has_perm(ann, "roles.read")
    event = _last_event()
    assert event.activity == "Delete role assignment"
    assert _changes(event)["members"] == (["ann"], None)


# --- Scope tags -------------------------------------------------------------------------------


def test_it_creates_updates_and_deletes_a_scope_tag(actor: Actor) -> None:
    tag = services.scope_tag_create(actor=actor, name="Paris", description="HQ")
    services.scope_tag_update(actor=actor, tag=tag, name="Paris HQ", description="HQ")
    services.scope_tag_delete(actor=actor, tag=tag)
    assert not ScopeTag.objects.filter(pk=tag.pk).exists()
    activities = list(AuditEvent.objects.order_by("id").values_list("activity", "category"))
    assert activities == [
        ("Create scope tag", "Scope tag"),
        ("Update scope tag", "Scope tag"),
        ("Delete scope tag", "Scope tag"),
    ]
    update = AuditEvent.objects.get(activity="Update scope tag")
    assert _changes(update) == {"name": ("Paris", "Paris HQ")}


def test_the_default_tag_cannot_be_deleted_or_renamed(actor: Actor, built_in_roles: dict[str, Role]) -> None:
    default = ScopeTag.default()
    with pytest.raises(Refused, match="Default tag can't be deleted"):
        services.scope_tag_delete(actor=actor, tag=default)
    with pytest.raises(Refused, match="keeps its name"):
        services.scope_tag_update(actor=actor, tag=default, name="Standard", description="")
    services.scope_tag_update(actor=actor, tag=default, name="Default", description="Untagged objects")


def test_a_tag_in_use_is_refused_with_a_clear_message(
    actor: Actor, make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag]
) -> None:
    paris = make_tag("Paris")
    make_admin("help_desk_operator", tags=[paris])
    with pytest.raises(Refused, match=r"“Paris” is in use by 1 role assignment\. Remove it"):
        services.scope_tag_delete(actor=actor, tag=paris)
    assert ScopeTag.objects.filter(pk=paris.pk).exists()


def test_duplicate_tag_names_are_refused(actor: Actor) -> None:
    services.scope_tag_create(actor=actor, name="Paris")
    with pytest.raises(Refused) as raised:
        services.scope_tag_create(actor=actor, name="Paris")
    assert raised.value.field == "name"

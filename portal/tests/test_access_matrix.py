"""The role x area x tag matrix, and how scope tags limit and merge permissions.

Expectations are written out here by hand, as Intune documents the built-in roles,
so an accidental edit to ``portal.rbac`` or to the seeded roles fails a test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps

from portal import access, rbac
from portal.models import Role, RoleAssignment, ScopeTag, ScopeTagged, User

pytestmark = pytest.mark.django_db

ALL_ACTIONS = "read create update delete assign"
ALL_PROFILE_ACTIONS = f"{ALL_ACTIONS} resend"
EXPECTED: dict[str, dict[str, str]] = {
    "intune_administrator": {
        "certificates": ALL_ACTIONS,
        "profiles": ALL_PROFILE_ACTIONS,
        "connectors": ALL_ACTIONS,
        "directory": ALL_ACTIONS,
        "audit": "read",
        "roles": "read",
    },
    "policy_and_profile_manager": {
        "certificates": "read",
        "profiles": ALL_PROFILE_ACTIONS,
        "connectors": "read",
        "directory": "read",
        "audit": "read",
        "roles": "",
    },
    "help_desk_operator": {
        "certificates": "read",
        "profiles": "read resend",
        "connectors": "read",
        "directory": "read",
        "audit": "read",
        "roles": "",
    },
    "read_only_operator": {
        "certificates": "read",
        "profiles": "read",
        "connectors": "read",
        "directory": "read",
        "audit": "read",
        "roles": "",
    },
    "intune_role_administrator": {
        "certificates": "",
        "profiles": "",
        "connectors": "",
        "directory": "read",
        "audit": "read",
        "roles": ALL_ACTIONS,
    },
}


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class _Tagged:
    """Stands in for a tagged object (certificate, profile...) for ``access.can``: it only needs ``scope_tags``."""

    def __init__(self, *tags: ScopeTag) -> None:
        self.scope_tags = ScopeTag.objects.filter(pk__in=[t.pk for t in tags])


def test_the_expectations_cover_every_built_in_role_and_area() -> None:
    assert set(EXPECTED) == {r.key for r in rbac.BUILT_IN_ROLES}
    assert all(set(areas) == set(rbac.AREAS) for areas in EXPECTED.values())


@pytest.mark.parametrize("tagged", [False, True], ids=["no-tags", "tag-Paris"])
@pytest.mark.parametrize("area", list(rbac.AREAS))
@pytest.mark.parametrize("role_key", [r.key for r in rbac.BUILT_IN_ROLES])
def test_role_x_area_x_tag(
    role_key: str,
    area: str,
    tagged: bool,
    make_admin: Callable[..., User],
    make_tag: Callable[[str], ScopeTag],
) -> None:
    paris = make_tag("Paris")
    user = make_admin(role_key, tags=[paris] if tagged else [])
    spec = next(r for r in rbac.BUILT_IN_ROLES if r.key == role_key)
    for action in rbac.ACTIONS[area]:
        permission = f"{area}.{action}"
        expected = action in EXPECTED[role_key][area].split()
        assert (permission in spec.permissions) == expected, f"catalogue: {role_key} {permission}"
        assert access.has_perm(user, permission) == expected, f"seeded role: {role_key} {permission}"
        grant = access.grant(user, permission)
        if not expected:
            assert grant == access.NO_GRANT
        elif tagged and area in rbac.SCOPED_AREAS:
            assert grant.tag_ids == frozenset({paris.pk}), permission
        else:
            # Untagged assignments, and tenant-wide areas, reach everything.
            assert grant.everything, permission


@pytest.mark.parametrize("role_key", [r.key for r in rbac.BUILT_IN_ROLES])
def test_the_seeded_roles_match_the_catalogue(role_key: str, built_in_roles: dict[str, Role]) -> None:
    spec = next(r for r in rbac.BUILT_IN_ROLES if r.key == role_key)
    role = built_in_roles[role_key]
    assert (role.name, set(role.permissions), role.requires_mfa) == (
        spec.name,
        set(spec.permissions),
        spec.requires_mfa,
    )


def test_an_admin_without_any_assignment_holds_nothing(make_admin: Callable[..., User]) -> None:
    nobody = make_admin(None)
    assert access.permissions(nobody) == frozenset()


def test_a_superuser_holds_everything_over_every_tag(db: None) -> None:
    root = User.objects.create_superuser(email="root@contoso.example", password="x" * 20)
    assert access.permissions(root) == frozenset(rbac.ALL_PERMISSIONS)
    assert access.grant(root, "certificates.delete").everything


def test_an_inactive_admin_holds_nothing(make_admin: Callable[..., User]) -> None:
    user = make_admin("intune_administrator")
    user.is_active = False
    assert access.permissions(user) == frozenset()


# --- Merging assignments ----------------------------------------------------------------------


def _assign(user: User, role: Role, *tags: ScopeTag) -> None:
    assignment = RoleAssignment.objects.create(
        role=role, name=f"{role.name} {RoleAssignment.objects.count()}"
    )
    assignment.members.add(user)
    assignment.scope_tags.set(tags)
    access.forget(user)


def test_two_tagged_assignments_merge_their_tags(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], built_in_roles: dict[str, Role]
) -> None:
    paris, oslo = make_tag("Paris"), make_tag("Oslo")
    user = make_admin("help_desk_operator", tags=[paris])
    _assign(user, built_in_roles["read_only_operator"], oslo)
    assert access.grant(user, "certificates.read").tag_ids == frozenset({paris.pk, oslo.pk})


def test_an_untagged_assignment_lifts_the_limit_only_for_its_own_permissions(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], built_in_roles: dict[str, Role]
) -> None:
    paris = make_tag("Paris")
    user = make_admin("intune_administrator", tags=[paris])
    _assign(user, built_in_roles["help_desk_operator"])  # no tags: reads everything
    assert access.grant(user, "certificates.read").everything
    assert access.grant(user, "certificates.delete").tag_ids == frozenset({paris.pk})


def test_a_tag_on_an_assignment_without_the_permission_gives_nothing(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], built_in_roles: dict[str, Role]
) -> None:
    user = make_admin("help_desk_operator", tags=[make_tag("Paris")])
    _assign(user, built_in_roles["intune_role_administrator"], make_tag("Oslo"))
    assert access.grant(user, "certificates.delete") == access.NO_GRANT
    assert access.grant(user, "certificates.read").tag_ids == frozenset(
        {ScopeTag.objects.get(name="Paris").pk}
    )


# --- Seeing objects ---------------------------------------------------------------------------


def test_an_admin_with_no_tags_sees_every_object(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag]
) -> None:
    user = make_admin("help_desk_operator")
    for obj in (_Tagged(make_tag("Paris")), _Tagged(ScopeTag.default()), _Tagged()):
        assert access.can(user, "certificates.read", obj)  # type: ignore[arg-type]


def test_a_tagged_admin_sees_only_objects_sharing_a_tag(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag]
) -> None:
    paris, oslo = make_tag("Paris"), make_tag("Oslo")
    user = make_admin("intune_administrator", tags=[paris])
    assert access.can(user, "certificates.update", _Tagged(paris))  # type: ignore[arg-type]
    assert access.can(user, "certificates.update", _Tagged(oslo, paris))  # type: ignore[arg-type]
    assert not access.can(user, "certificates.update", _Tagged(oslo))  # type: ignore[arg-type]
    assert not access.can(user, "certificates.update", _Tagged(ScopeTag.default()))  # type: ignore[arg-type]
    assert not access.can(user, "roles.update", _Tagged(paris))  # type: ignore[arg-type]
    # Tenant-wide areas ignore tags.
    assert access.can(user, "directory.update", _Tagged(oslo))  # type: ignore[arg-type]


def test_a_new_object_gets_its_creators_tags(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], built_in_roles: dict[str, Role]
) -> None:
    paris, oslo, rome = make_tag("Paris"), make_tag("Oslo"), make_tag("Rome")
    user = make_admin("intune_administrator", tags=[paris, oslo])
    assert set(access.creator_tags(user, "certificates")) == {paris, oslo}
    assert access.creator_tags(user, "certificates", [oslo]) == [oslo]
    # A tag the creator does not hold is not given; their own tags are used instead.
    assert set(access.creator_tags(user, "certificates", [rome])) == {paris, oslo}
    assert set(access.held_tags(user, "certificates.create")) == {paris, oslo}


def test_an_untagged_creator_gives_the_default_tag(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag]
) -> None:
    rome = make_tag("Rome")
    user = make_admin("intune_administrator")
    assert access.creator_tags(user, "profiles") == [ScopeTag.default()]
    assert access.creator_tags(user, "profiles", [rome]) == [rome]
    assert set(access.held_tags(user, "profiles.create")) == set(ScopeTag.objects.all())


def test_an_untagged_read_only_assignment_widens_reads_but_not_the_tags_a_writer_may_give(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], built_in_roles: dict[str, Role]
) -> None:
    paris, rome = make_tag("Paris"), make_tag("Rome")
    user = make_admin("intune_administrator", tags=[paris])
    _assign(user, built_in_roles["read_only_operator"])  # no tags
    assert access.grant(user, "profiles.read").everything
    assert access.tag_limit(user, "profiles.update") == frozenset({paris.pk})
    assert list(access.held_tags(user, "profiles.update")) == [paris]
    assert access.creator_tags(user, "profiles", [rome]) == [paris]
    # A permission not held at all gives no tags to hand out.
    assert access.tag_limit(user, "roles.assign") == frozenset()


class _Owned(_Tagged):
    """A tagged object readable by whoever reads every directory user, as a certificate is."""

    RBAC_READ_THROUGH = "directory.read"


def test_an_object_is_read_through_its_owner_but_written_only_within_its_tags(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], built_in_roles: dict[str, Role]
) -> None:
    paris, oslo = make_tag("Paris"), make_tag("Oslo")
    user = make_admin("intune_administrator", tags=[paris])
    owned = _Owned(oslo)
    assert access.can(user, "certificates.read", owned)  # type: ignore[arg-type]
    assert not access.can(user, "certificates.delete", owned)  # type: ignore[arg-type]
    assert not access.can(user, "certificates.read", _Tagged(oslo))  # type: ignore[arg-type]
    # Without the owner's read, the object's own tags decide.
    reader = make_admin(None)
    role = Role.objects.create(name="Certificates only", permissions=["certificates.read"])
    _assign(reader, role, paris)
    assert not access.can(reader, "certificates.read", owned)  # type: ignore[arg-type]


def _tagged_models() -> list[type[ScopeTagged]]:
    return [m for m in apps.get_models() if issubclass(m, ScopeTagged)]


@pytest.mark.parametrize("model", _tagged_models() or [None], ids=lambda m: m.__name__ if m else "none")
def test_scoped_querysets_run_on_every_tagged_model(
    model: type[ScopeTagged] | None, make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag]
) -> None:
    """Every concrete tagged model goes through ``access.scoped`` with each kind of grant.

    Object-level checks (which rows come back) belong with each model's own tests,
    where its objects can be built.
    """
    if model is None:
        pytest.skip("No app defines a concrete scope-tagged model yet")
    area = model.RBAC_AREA
    assert area in rbac.SCOPED_AREAS
    everyone = make_admin("intune_administrator")
    tagged = make_admin("intune_administrator", tags=[make_tag("Paris")])
    nobody = make_admin(None)
    queryset = model.objects.all()  # type: ignore[attr-defined]
    assert access.scoped(queryset, everyone).count() == queryset.count()
    assert access.scoped(queryset, tagged).count() <= queryset.count()
    assert access.scoped(queryset, nobody).count() == 0

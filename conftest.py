"""Fixtures shared by every app's tests: admins holding built-in roles over scope tags."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

import pytest
from django.apps import apps as django_apps

from portal.models import Role, RoleAssignment, ScopeTag, User

_seed = importlib.import_module("portal.migrations.0002_built_in_roles_and_audit_guard")

PASSWORD = "correct horse battery staple 7"


@pytest.fixture
def built_in_roles(db: None) -> dict[str, Role]:
    # Transactional tests flush the tables, data migrations included; put them back.
    _seed.sync_built_in_roles(django_apps, None)
    return {role.key: role for role in Role.objects.filter(is_built_in=True) if role.key}


@pytest.fixture
def make_tag(db: None) -> Callable[[str], ScopeTag]:
    def make(name: str) -> ScopeTag:
        return ScopeTag.objects.get_or_create(name=name)[0]

    return make


@pytest.fixture
def make_admin(built_in_roles: dict[str, Role]) -> Callable[..., User]:
    """``make_admin("help_desk_operator", tags=[tag])``: a user holding that role over those tags."""

    def make(role_key: str | None = None, *, tags: Iterable[ScopeTag] = (), email: str | None = None) -> User:
        email = email or f"{role_key or 'nobody'}-{User.objects.count() + 1}@contoso.example"
        user = User.objects.create_user(email=email, password=PASSWORD, display_name=email.split("@")[0])
        if role_key:
            role = built_in_roles[role_key]
            assignment = RoleAssignment.objects.create(role=role, name=f"{role.name} for {email}")
            assignment.members.add(user)
            assignment.scope_tags.set(list(tags))
        return user

    return make


@pytest.fixture
def intune_admin(make_admin: Callable[..., User]) -> User:
    return make_admin("intune_administrator")


@pytest.fixture
def helpdesk(make_admin: Callable[..., User]) -> User:
    return make_admin("help_desk_operator")

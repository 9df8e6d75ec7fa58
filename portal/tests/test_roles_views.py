"""The Roles pages through the test client: success paths, 403 without the permission, 404, 405."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from portal import services
from portal.audit import Actor
from portal.models import AuditEvent, Role, RoleAssignment, ScopeTag, User

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_mfa_prompt(settings: object) -> None:
    # The Intune Role Administrator role requires TOTP; these tests are about the pages behind it.
    settings.PORTAL_ENFORCE_MFA = False  # type: ignore[attr-defined]


@pytest.fixture
def role_admin(make_admin: Callable[..., User]) -> User:
    return make_admin("intune_role_administrator")


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def as_role_admin(role_admin: User) -> Client:
    return _client(role_admin)


@pytest.fixture
def custom_role(role_admin: User) -> Role:
    return services.role_create(actor=Actor.for_user(role_admin), name="Auditors", permissions=["audit.read"])


# --- Reading ----------------------------------------------------------------------------------


def test_the_roles_page_lists_built_in_and_custom_roles(as_role_admin: Client, custom_role: Role) -> None:
    response = as_role_admin.get(reverse("roles"))
    assert response.status_code == 200
    for name in ("Intune Administrator", "Help Desk Operator", "Intune Role Administrator", "Auditors"):
        assert name in response.text
    assert reverse("role_create") in response.text


def test_a_reader_sees_roles_without_change_buttons(intune_admin: User) -> None:
    response = _client(intune_admin).get(reverse("roles"))
    assert response.status_code == 200
    assert reverse("role_create") not in response.text


@pytest.mark.parametrize(
    "url_name", ["roles", "scope_tags", "admins", "role_create", "scope_tag_create", "admin_invite"]
)
def test_a_help_desk_operator_is_refused(helpdesk: User, url_name: str) -> None:
    assert _client(helpdesk).get(reverse(url_name)).status_code == 403


def test_an_anonymous_visitor_is_sent_to_sign_in(client: Client) -> None:
    response = client.get(reverse("roles"))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_role_detail_shows_permissions_and_assignments(
    as_role_admin: Client,
    built_in_roles: dict[str, Role],
    make_admin: Callable[..., User],
    make_tag: Callable[[str], ScopeTag],
) -> None:
    make_admin("help_desk_operator", tags=[make_tag("Paris")], email="desk@contoso.example")
    response = as_role_admin.get(reverse("role_detail", args=[built_in_roles["help_desk_operator"].code]))
    assert response.status_code == 200
    assert "desk@contoso.example" in response.text and "Paris" in response.text
    assert "Built-in (read-only)" in response.text
    assert reverse("role_edit", args=[built_in_roles["help_desk_operator"].code]) not in response.text


def test_an_unknown_role_is_404(as_role_admin: Client) -> None:
    url = reverse("role_detail", args=["00000000-0000-0000-0000-000000000000"])
    assert as_role_admin.get(url).status_code == 404


def test_wrong_methods_are_405(as_role_admin: Client, role_admin: User) -> None:
    assert as_role_admin.post(reverse("roles")).status_code == 405
    assert as_role_admin.put(reverse("role_create")).status_code == 405
    assert as_role_admin.get(reverse("admin_resend_invite", args=[role_admin.pk])).status_code == 405


# --- Roles ------------------------------------------------------------------------------------


def test_it_creates_a_role_from_grouped_checkboxes(as_role_admin: Client) -> None:
    response = as_role_admin.post(
        reverse("role_create"),
        {"name": "Tag keepers", "perm_roles": ["roles.read", "roles.create"], "perm_audit": ["audit.read"]},
    )
    role = Role.objects.get(name="Tag keepers")
    assert response.status_code == 302 and response["Location"] == reverse("role_detail", args=[role.code])
    assert role.permissions == ["audit.read", "roles.read", "roles.create"]
    assert AuditEvent.objects.filter(activity="Create role", category="Role").count() == 1


def test_the_role_form_groups_permissions_per_area(as_role_admin: Client) -> None:
    response = as_role_admin.get(reverse("role_create"))
    assert "<legend>Certificates</legend>" in response.text
    assert "<legend>Roles and scope tags</legend>" in response.text
    assert 'value="profiles.assign"' in response.text


def test_it_duplicates_a_built_in_role(as_role_admin: Client, built_in_roles: dict[str, Role]) -> None:
    source = built_in_roles["intune_role_administrator"]
    response = as_role_admin.get(reverse("role_create") + f"?from={source.code}")
    assert 'value="Copy of Intune Role Administrator"' in response.text
    assert 'value="roles.assign"' in response.text and "checked" in response.text


def test_it_shows_an_escalation_refusal_on_the_form(as_role_admin: Client) -> None:
    response = as_role_admin.post(
        reverse("role_create"), {"name": "Sneaky", "perm_certificates": ["certificates.delete"]}
    )
    assert response.status_code == 200
    assert "permissions you don&#x27;t hold yourself" in response.text
    assert not Role.objects.filter(name="Sneaky").exists()


def test_a_role_with_no_permission_is_refused(as_role_admin: Client) -> None:
    response = as_role_admin.post(reverse("role_create"), {"name": "Empty"})
    assert response.status_code == 200 and "Choose at least one permission" in response.text


def test_a_reader_cannot_create_a_role(intune_admin: User) -> None:
    response = _client(intune_admin).post(reverse("role_create"), {"name": "X", "perm_audit": ["audit.read"]})
    assert response.status_code == 403
    assert not Role.objects.filter(name="X").exists()


def test_it_edits_a_custom_role(as_role_admin: Client, custom_role: Role) -> None:
    response = as_role_admin.post(
        reverse("role_edit", args=[custom_role.code]),
        {"name": "Auditors", "description": "Read the log", "perm_audit": ["audit.read"]},
    )
    assert response.status_code == 302
    custom_role.refresh_from_db()
    assert custom_role.description == "Read the log"


def test_the_mfa_box_is_locked_for_a_role_holding_permissions_the_editor_lacks(as_role_admin: Client) -> None:
    role = Role.objects.create(name="Cert admins", permissions=["certificates.delete"], requires_mfa=True)
    url = reverse("role_edit", args=[role.code])
    page = as_role_admin.get(url).text
    assert 'name="requires_mfa"' in page and "disabled" in page.split('name="requires_mfa"')[1].split(">")[0]
    assert "You don&#x27;t hold: certificates.delete" in page
    # The box is unticked in the post, as a hand-made request would send it.
    response = as_role_admin.post(
        url, {"name": "Cert admins", "description": "renamed", "perm_certificates": ["certificates.delete"]}
    )
    assert response.status_code == 302
    role.refresh_from_db()
    assert (role.requires_mfa, role.description) == (True, "renamed")


def test_built_in_roles_have_no_edit_or_delete_page(
    as_role_admin: Client, built_in_roles: dict[str, Role]
) -> None:
    code = built_in_roles["read_only_operator"].code
    assert as_role_admin.get(reverse("role_edit", args=[code])).status_code == 404
    assert as_role_admin.post(reverse("role_delete", args=[code])).status_code == 404


def test_it_deletes_a_custom_role_after_confirmation(as_role_admin: Client, custom_role: Role) -> None:
    url = reverse("role_delete", args=[custom_role.code])
    assert "Delete role “Auditors”?" in as_role_admin.get(url).text
    assert as_role_admin.post(url).status_code == 302
    assert not Role.objects.filter(pk=custom_role.pk).exists()


def test_an_assigned_role_is_not_deleted(as_role_admin: Client, custom_role: Role, role_admin: User) -> None:
    services.assignment_create(
        actor=Actor.for_user(role_admin), role=custom_role, name="All", members=[role_admin]
    )
    response = as_role_admin.post(reverse("role_delete", args=[custom_role.code]))
    assert response.status_code == 200 and "Delete them before the role" in response.text
    assert Role.objects.filter(pk=custom_role.pk).exists()


# --- Role assignments -------------------------------------------------------------------------


def test_it_assigns_a_role_to_members_over_tags(
    as_role_admin: Client,
    custom_role: Role,
    make_admin: Callable[..., User],
    make_tag: Callable[[str], ScopeTag],
) -> None:
    member, paris = make_admin(email="ann@contoso.example"), make_tag("Paris")
    response = as_role_admin.post(
        reverse("assignment_create", args=[custom_role.code]),
        {"name": "Paris auditors", "members": [member.pk], "scope_tags": [paris.pk]},
    )
    assert response.status_code == 302
    assignment = RoleAssignment.objects.get(name="Paris auditors")
    assert list(assignment.members.all()) == [member] and list(assignment.scope_tags.all()) == [paris]


def test_it_edits_and_deletes_an_assignment(
    as_role_admin: Client, custom_role: Role, role_admin: User, make_admin: Callable[..., User]
) -> None:
    assignment = services.assignment_create(actor=Actor.for_user(role_admin), role=custom_role, name="Team")
    bob = make_admin(email="bob@contoso.example")
    edit = as_role_admin.post(
        reverse("assignment_edit", args=[assignment.code]), {"name": "Team", "members": [bob.pk]}
    )
    assert edit.status_code == 302 and list(assignment.members.all()) == [bob]
    delete = as_role_admin.post(reverse("assignment_delete", args=[assignment.code]))
    assert delete.status_code == 302 and not RoleAssignment.objects.filter(pk=assignment.pk).exists()


def test_a_tagged_role_admin_is_offered_only_their_tags(
    make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag], custom_role: Role
) -> None:
    paris, oslo = make_tag("Paris"), make_tag("Oslo")
    tagged = make_admin("intune_role_administrator", tags=[paris])
    response = _client(tagged).get(reverse("assignment_create", args=[custom_role.code]))
    assert f'value="{paris.pk}"' in response.text and f'value="{oslo.pk}"' not in response.text


# --- Scope tags -------------------------------------------------------------------------------


def test_it_creates_edits_and_deletes_a_scope_tag(as_role_admin: Client) -> None:
    assert as_role_admin.post(reverse("scope_tag_create"), {"name": "Paris"}).status_code == 302
    tag = ScopeTag.objects.get(name="Paris")
    assert "Paris" in as_role_admin.get(reverse("scope_tags")).text
    edit = as_role_admin.post(
        reverse("scope_tag_edit", args=[tag.code]), {"name": "Oslo", "description": "North"}
    )
    assert edit.status_code == 302
    assert as_role_admin.post(reverse("scope_tag_delete", args=[tag.code])).status_code == 302
    assert not ScopeTag.objects.filter(pk=tag.pk).exists()


def test_a_duplicate_tag_name_is_shown_on_the_name_field(
    as_role_admin: Client, make_tag: Callable[[str], ScopeTag]
) -> None:
    make_tag("Paris")
    response = as_role_admin.post(reverse("scope_tag_create"), {"name": "Paris"})
    assert response.status_code == 200 and "already exists" in response.text


def test_a_refused_change_is_shown_on_the_field_it_concerns_with_its_code(
    as_role_admin: Client, make_tag: Callable[[str], ScopeTag]
) -> None:
    make_tag("Paris")
    response = as_role_admin.post(reverse("scope_tag_create"), {"name": "Paris"})
    errors = response.context["form"].errors
    assert list(errors) == ["name"] and errors["name"][0].endswith("(code unique)")
    escalation = as_role_admin.post(
        reverse("role_create"), {"name": "Sneaky", "perm_certificates": ["certificates.delete"]}
    )
    form = escalation.context["form"]
    assert form.non_field_errors() == [
        "You can't grant permissions you don't hold yourself: certificates.delete. (code permission_not_held)"
    ]


def test_the_default_tag_is_not_deleted(as_role_admin: Client) -> None:
    default = ScopeTag.default()
    response = as_role_admin.post(reverse("scope_tag_delete", args=[default.code]))
    assert response.status_code == 200 and "Default tag can&#x27;t be deleted" in response.text
    assert ScopeTag.objects.filter(pk=default.pk).exists()


def test_a_tag_in_use_is_refused(
    as_role_admin: Client, make_admin: Callable[..., User], make_tag: Callable[[str], ScopeTag]
) -> None:
    paris = make_tag("Paris")
    make_admin("read_only_operator", tags=[paris])
    response = as_role_admin.post(reverse("scope_tag_delete", args=[paris.code]))
    assert response.status_code == 200 and "is in use by 1 role assignment" in response.text


# --- Administrators ---------------------------------------------------------------------------


def test_the_administrators_page_lists_people_and_their_roles(
    as_role_admin: Client, role_admin: User
) -> None:
    response = as_role_admin.get(reverse("admins"))
    assert response.status_code == 200
    assert role_admin.email in response.text and "Intune Role Administrator" in response.text

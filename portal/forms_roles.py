"""Forms for roles, role assignments, scope tags and administrator invitations.

Forms validate and normalise input; the services in :mod:`portal.services` make the change.
"""

from __future__ import annotations

from typing import Any

from django import forms

from portal import access, rbac
from portal.access import AnyUser
from portal.models import Role, RoleAssignment, ScopeTag, User

ACTION_LABELS = {
    "read": "Read",
    "create": "Create",
    "update": "Update",
    "delete": "Delete",
    "assign": "Assign",
    "resend": "Resend to devices",
}


def _area_field(area: str) -> str:
    return f"perm_{area}"


class RoleForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    requires_mfa = forms.BooleanField(
        required=False,
        label="Require an authenticator app",
        help_text="Members must sign in with TOTP multi-factor authentication.",
    )

    def __init__(self, *args: Any, mfa_blockers: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if mfa_blockers:
            # A disabled field keeps its initial value whatever the browser sends.
            self.fields["requires_mfa"].disabled = True
            self.fields["requires_mfa"].help_text = (
                "Only an administrator holding every permission of this role can change this. "
                f"You don't hold: {', '.join(mfa_blockers)}."
            )
        for area, actions in rbac.ACTIONS.items():
            self.fields[_area_field(area)] = forms.MultipleChoiceField(
                label=rbac.AREAS[area],
                required=False,
                choices=[
                    (f"{area}.{action}", ACTION_LABELS.get(action, action.title())) for action in actions
                ],
                widget=forms.CheckboxSelectMultiple,
            )

    @classmethod
    def initial_from(cls, role: Role, *, copy: bool = False) -> dict[str, Any]:
        """Initial values showing ``role``; with ``copy``, for a new role duplicated from it."""
        initial: dict[str, Any] = {
            "name": f"Copy of {role.name}"[:100] if copy else role.name,
            "description": role.description,
            "requires_mfa": role.requires_mfa,
        }
        for area in rbac.ACTIONS:
            initial[_area_field(area)] = [p for p in role.permissions if p.startswith(f"{area}.")]
        return initial

    def permission_groups(self) -> list[forms.BoundField]:
        return [self[_area_field(area)] for area in rbac.ACTIONS]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        permissions: list[str] = []
        for area in rbac.ACTIONS:
            permissions += data.get(_area_field(area)) or []
        if not permissions:
            raise forms.ValidationError("Choose at least one permission.")
        data["permissions"] = permissions
        return data

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {k: data[k] for k in ("name", "description", "permissions", "requires_mfa")}


class _AdminChoiceField(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.label} ({obj.email})" if obj.display_name else obj.email


class AssignmentForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    members = _AdminChoiceField(
        queryset=User.objects.filter(is_active=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Administrators who get this role.",
    )
    scope_tags = forms.ModelMultipleChoiceField(
        queryset=ScopeTag.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Scope (tags)",
        help_text="Members see and change only objects carrying one of these tags. No tags: every object.",
    )

    def __init__(self, *args: Any, user: AnyUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only tags the admin holds can be given (Intune's rule), through the assignments that let them assign.
        self.fields["scope_tags"].queryset = access.held_tags(user, "roles.assign")  # type: ignore[attr-defined]

    @staticmethod
    def initial_from(assignment: RoleAssignment) -> dict[str, Any]:
        return {
            "name": assignment.name,
            "description": assignment.description,
            "members": list(assignment.members.all()),
            "scope_tags": list(assignment.scope_tags.all()),
        }

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {k: data[k] for k in ("name", "description", "members", "scope_tags")}


class ScopeTagForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class _AssignmentChoiceField(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.role.name}: {obj.name}"


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address", max_length=254)
    display_name = forms.CharField(max_length=200, required=False)
    assignments = _AssignmentChoiceField(
        queryset=RoleAssignment.objects.select_related("role"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Role assignments",
        help_text="The new administrator becomes a member of these assignments.",
    )

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An administrator with this e-mail address already exists.")
        return email

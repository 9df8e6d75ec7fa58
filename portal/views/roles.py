"""Tenant administration > Roles: roles, role assignments, scope tags and administrators.

Roles, assignments and tags are tenant-wide (not scope-tagged), so each view checks
its ``roles.*`` permission through :func:`portal.access.permission_required` first.
Services refuse unsafe changes with ``Refused``; views show it on the form (``refusal.shown``).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.forms import Form
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal import access, rbac, services
from portal.access import permission_required
from portal.audit import Actor
from portal.forms_roles import ACTION_LABELS, AssignmentForm, InviteForm, RoleForm, ScopeTagForm
from portal.http import AuthenticatedHttpRequest
from portal.lib import refusal
from portal.models import Role, RoleAssignment, ScopeTag, User

require_GET_POST = require_http_methods(["GET", "POST"])


def _page(request: AuthenticatedHttpRequest, template: str, **context: Any) -> HttpResponse:
    can = {action: access.has_perm(request.user, f"roles.{action}") for action in rbac.ACTIONS["roles"]}
    return render(request, f"portal/roles/{template}", {"nav_active": "tenant", "can": can, **context})


def _confirm(request: AuthenticatedHttpRequest, form: Form, kind: str, label: str, back: str) -> HttpResponse:
    return _page(request, "confirm_delete.html", form=form, kind=kind, label=label, back=back)


def _source_role(request: AuthenticatedHttpRequest) -> Role | None:
    """The role to duplicate, from ``?from=<code>``."""
    try:
        code = uuid.UUID(request.GET.get("from", ""))
    except ValueError:
        return None
    return Role.objects.filter(code=code).first()


# --- Roles ------------------------------------------------------------------------------------


@require_GET
@permission_required("roles.read")
def roles(request: AuthenticatedHttpRequest) -> HttpResponse:
    all_roles = Role.objects.annotate(assignment_count=Count("assignments"))
    return _page(request, "roles.html", roles=all_roles, tab="roles")


@require_GET
@permission_required("roles.read")
def role_detail(request: AuthenticatedHttpRequest, code: uuid.UUID) -> HttpResponse:
    role = get_object_or_404(Role, code=code)
    held = set(role.permissions)
    areas = [
        (rbac.AREAS[area], [(ACTION_LABELS[a], f"{area}.{a}" in held) for a in actions])
        for area, actions in rbac.ACTIONS.items()
    ]
    assignments = role.assignments.prefetch_related("members", "scope_tags")
    return _page(request, "role_detail.html", role=role, areas=areas, assignments=assignments)


@require_GET_POST
@permission_required("roles.create")
def role_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    source = _source_role(request)
    form = RoleForm(
        request.POST or None,
        initial=RoleForm.initial_from(source, copy=True) if source else {"requires_mfa": True},
    )
    if request.method == "POST" and form.is_valid():
        with refusal.shown(request, form):
            role = services.role_create(actor=Actor.from_request(request), **form.service_kwargs())
            messages.success(request, f"Role “{role.name}” created.")
            return redirect("role_detail", code=role.code)
    return _page(request, "role_form.html", form=form, source=source)


@require_GET_POST
@permission_required("roles.update")
def role_edit(request: AuthenticatedHttpRequest, code: uuid.UUID) -> HttpResponse:
    role = get_object_or_404(Role, code=code, is_built_in=False)
    form = RoleForm(
        request.POST or None,
        initial=RoleForm.initial_from(role),
        mfa_blockers=services.mfa_change_blockers(request.user, role.permissions),
    )
    if request.method == "POST" and form.is_valid():
        with refusal.shown(request, form):
            services.role_update(actor=Actor.from_request(request), role=role, **form.service_kwargs())
            messages.success(request, f"Role “{form.cleaned_data['name']}” saved.")
            return redirect("role_detail", code=role.code)
    return _page(request, "role_form.html", form=form, role=role)


@require_GET_POST
@permission_required("roles.delete")
def role_delete(request: AuthenticatedHttpRequest, code: uuid.UUID) -> HttpResponse:
    role = get_object_or_404(Role, code=code, is_built_in=False)
    form = Form(request.POST if request.method == "POST" else None)
    if form.is_valid():
        with refusal.shown(request, form):
            services.role_delete(actor=Actor.from_request(request), role=role)
            messages.success(request, f"Role “{role.name}” deleted.")
            return redirect("roles")
    return _confirm(request, form, "role", role.name, reverse("role_detail", args=[role.code]))


# --- Role assignments -------------------------------------------------------------------------


@require_GET_POST
@permission_required("roles.assign")
def assignment_create(request: AuthenticatedHttpRequest, code: uuid.UUID) -> HttpResponse:
    role = get_object_or_404(Role, code=code)
    form = AssignmentForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        with refusal.shown(request, form):
            services.assignment_create(actor=Actor.from_request(request), role=role, **form.service_kwargs())
            messages.success(request, f"Assignment “{form.cleaned_data['name']}” created.")
            return redirect("role_detail", code=role.code)
    return _page(request, "assignment_form.html", form=form, role=role)


@require_GET_POST
@permission_required("roles.assign")
def assignment_edit(request: AuthenticatedHttpRequest, code: uuid.UUID) -> HttpResponse:
    assignment = get_object_or_404(RoleAssignment.objects.select_related("role"), code=code)
    initial = AssignmentForm.initial_from(assignment)
    form = AssignmentForm(request.POST or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        with refusal.shown(request, form):
            services.assignment_update(
                actor=Actor.from_request(request), assignment=assignment, **form.service_kwargs()
            )
            messages.success(request, f"Assignment “{form.cleaned_data['name']}” saved.")
            return redirect("role_detail", code=assignment.role.code)
    return _page(request, "assignment_form.html", form=form, role=assignment.role, assignment=assignment)


@require_GET_POST
@permission_required("roles.assign")
def assignment_delete(request: AuthenticatedHttpRequest, code: uuid.UUID) -> HttpResponse:
    assignment = get_object_or_404(RoleAssignment.objects.select_related("role"), code=code)
    form = Form(request.POST if request.method == "POST" else None)
    if form.is_valid():
        with refusal.shown(request, form):
            services.assignment_delete(actor=Actor.from_request(request), assignment=assignment)
            messages.success(request, f"Assignment “{assignment.name}” deleted.")
            return redirect("role_detail", code=assignment.role.code)
    back = reverse("role_detail", args=[assignment.role.code])
    return _confirm(request, form, "role assignment", str(assignment), back)


# --- Scope tags -------------------------------------------------------------------------------


@require_GET
@permission_required("roles.read")
def scope_tags(request: AuthenticatedHttpRequest) -> HttpResponse:
    tags = ScopeTag.objects.annotate(assignment_count=Count("role_assignments"))
    return _page(request, "scope_tags.html", tags=tags, tab="scope_tags")


@require_GET_POST
@permission_required("roles.create")
def scope_tag_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ScopeTagForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with refusal.shown(request, form):
            tag = services.scope_tag_create(actor=Actor.from_request(request), **form.cleaned_data)
            messages.success(request, f"Scope tag “{tag.name}” created.")
            return redirect("scope_tags")
    return _page(request, "scope_tag_form.html", form=form)


@require_GET_POST
@permission_required("roles.update")
def scope_tag_edit(request: AuthenticatedHttpRequest, code: uuid.UUID) -> HttpResponse:
    tag = get_object_or_404(ScopeTag, code=code)
    form = ScopeTagForm(request.POST or None, initial={"name": tag.name, "description": tag.description})
    if request.method == "POST" and form.is_valid():
        with refusal.shown(request, form):
            services.scope_tag_update(actor=Actor.from_request(request), tag=tag, **form.cleaned_data)
            messages.success(request, f"Scope tag “{form.cleaned_data['name']}” saved.")
            return redirect("scope_tags")
    return _page(request, "scope_tag_form.html", form=form, tag=tag)


@require_GET_POST
@permission_required("roles.delete")
def scope_tag_delete(request: AuthenticatedHttpRequest, code: uuid.UUID) -> HttpResponse:
    tag = get_object_or_404(ScopeTag, code=code)
    form = Form(request.POST if request.method == "POST" else None)
    if form.is_valid():
        with refusal.shown(request, form):
            services.scope_tag_delete(actor=Actor.from_request(request), tag=tag)
            messages.success(request, f"Scope tag “{tag.name}” deleted.")
            return redirect("scope_tags")
    return _confirm(request, form, "scope tag", tag.name, reverse("scope_tags"))


# --- Administrators ---------------------------------------------------------------------------


@require_GET
@permission_required("roles.read")
def admins(request: AuthenticatedHttpRequest) -> HttpResponse:
    people = User.objects.prefetch_related("role_assignments__role").select_related("invited_by")
    return _page(request, "admins.html", admins=people, tab="admins")


@require_GET_POST
@permission_required("roles.assign")
def admin_invite(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with refusal.shown(request, form):
            user = services.admin_invite(
                actor=Actor.from_request(request),
                email=data["email"],
                display_name=data["display_name"],
                assignments=data["assignments"],
            )
            messages.success(request, f"Invitation sent to {user.email}.")
            return redirect("admins")
    return _page(request, "admin_invite.html", form=form)


@require_POST
@permission_required("roles.assign")
def admin_resend_invite(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk, is_active=True)
    with refusal.shown(request):
        services.admin_resend_invite(actor=Actor.from_request(request), user=user)
        messages.success(request, f"A new invitation was sent to {user.email}.")
    return redirect("admins")


urlpatterns: list[URLPattern] = [
    path("", roles, name="roles"),
    path("new/", role_create, name="role_create"),
    path("<uuid:code>/", role_detail, name="role_detail"),
    path("<uuid:code>/edit/", role_edit, name="role_edit"),
    path("<uuid:code>/delete/", role_delete, name="role_delete"),
    path("<uuid:code>/assignments/new/", assignment_create, name="assignment_create"),
    path("assignments/<uuid:code>/edit/", assignment_edit, name="assignment_edit"),
    path("assignments/<uuid:code>/delete/", assignment_delete, name="assignment_delete"),
    path("scope-tags/", scope_tags, name="scope_tags"),
    path("scope-tags/new/", scope_tag_create, name="scope_tag_create"),
    path("scope-tags/<uuid:code>/edit/", scope_tag_edit, name="scope_tag_edit"),
    path("scope-tags/<uuid:code>/delete/", scope_tag_delete, name="scope_tag_delete"),
    path("admins/", admins, name="admins"),
    path("admins/invite/", admin_invite, name="admin_invite"),
    path("admins/<int:pk>/resend-invite/", admin_resend_invite, name="admin_resend_invite"),
]

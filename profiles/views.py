"""Devices > Configuration profiles: list, creation wizard, overview, properties and their edits.

The status reports and the per-user page are in :mod:`profiles.report_views`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect, push_url

from directory.models import Platform
from portal import access
from portal.access import permission_required
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest
from portal.lib import refusal
from profiles import services
from profiles.forms import (
    AssignmentsForm,
    BasicsForm,
    CreateProfileForm,
    DuplicateForm,
    ProfileFilterForm,
    RuleFormSet,
    ScopeTagsForm,
    SettingsForm,
    rule_initial,
)
from profiles.hooks import profile_sections
from profiles.lint import lint
from profiles.models import Profile, ProfileAssignment
from profiles.reports import evaluate, evaluate_draft
from profiles.specs import RuleSpec
from profiles.targeting import STATE_LABELS, STATUSES
from profiles.wizard import STEP_LABELS, Wizard, draft_spec

require_GET_POST = require_http_methods(["GET", "POST"])
PAGE_SIZE = 50
NAV = {"nav_active": "profiles"}


def get_profile(request: AuthenticatedHttpRequest, code: Any, write: str | None = None) -> Profile:
    """404 for a profile the admin cannot see; 403 when they see it but may not ``write``."""
    return access.get_for_user(request.user, Profile.objects.all(), write=write, code=code)


def _can(request: AuthenticatedHttpRequest, profile: Profile | None = None) -> dict[str, bool]:
    actions = ("create", "update", "delete", "assign")
    return {a: access.can(request.user, f"profiles.{a}", profile) for a in actions}


def _redirect(request: AuthenticatedHttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# --- List --------------------------------------------------------------------


@require_GET
@permission_required("profiles.read")
def profile_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ProfileFilterForm(request.GET or None)
    profiles = access.scoped(Profile.objects.all(), request.user).prefetch_related("scope_tags")
    assigned = (
        Q(all_users=True)
        | Q(all_devices=True)
        | Q(
            Exists(
                ProfileAssignment.objects.filter(profile=OuterRef("pk"), mode=ProfileAssignment.Mode.INCLUDE)
            )
        )
    )
    profiles = profiles.annotate(is_assigned=assigned)
    status = 200
    if form.is_bound and not form.is_valid():
        status = 400
    elif form.is_bound:
        data = form.cleaned_data
        if data["q"]:
            profiles = profiles.filter(name__icontains=data["q"])
        if data["platform"]:
            profiles = profiles.filter(platform=data["platform"])
        if data["assigned"]:
            profiles = profiles.filter(is_assigned=data["assigned"] == "yes")
    page = Paginator(profiles, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    template = "profiles/list.html#results" if request.htmx else "profiles/list.html"
    context = {"form": form, "page": page, "query": query.urlencode(), "can": _can(request), **NAV}
    return render(request, template, context, status=status)


# --- Creation wizard ---------------------------------------------------------


@require_GET_POST
@permission_required("profiles.create")
def profile_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = CreateProfileForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wizard = Wizard.start(request, **form.cleaned_data)
        return redirect("profiles:wizard", wizard=wizard.id, step="basics")
    status = 400 if form.is_bound else 200
    return render(request, "profiles/create.html", {"form": form, **NAV}, status=status)


def _render_step(
    request: AuthenticatedHttpRequest, wizard: Wizard, step: str, form: Any = None, status: int = 200
) -> HttpResponse:
    context: dict[str, Any] = {
        "wizard": wizard,
        "step": step,
        "step_label": STEP_LABELS[step],
        "steps": [
            {
                "key": s,
                "label": STEP_LABELS[s],
                "done": wizard.is_valid_step(s),
                "reachable": wizard.reachable(s),
            }
            for s in wizard.steps
        ],
        "form": form,
        "is_first": step == wizard.steps[0],
        **NAV,
    }
    if step == "review":
        draft, failed = wizard.draft()
        if draft is None:
            assert failed is not None
            return _go(request, wizard, failed)
        context["draft"] = draft
        evaluation = evaluate_draft(draft_spec(draft))
        summary = evaluation.summary()
        context.update(summary=summary, lints=lint(evaluation, summary=summary))
    template = "profiles/wizard.html#wizard" if request.htmx else "profiles/wizard.html"
    response = render(request, template, context, status=status)
    if request.htmx:
        push_url(response, reverse("profiles:wizard", args=[wizard.id, step]))
    return response


def _go(request: AuthenticatedHttpRequest, wizard: Wizard, step: str) -> HttpResponse:
    """Move to ``step``: htmx swaps it in place, a plain browser follows a redirect."""
    if request.htmx:
        return _render_step(request, wizard, step, None if step == "review" else wizard.form(step))
    return redirect("profiles:wizard", wizard=wizard.id, step=step)


@require_GET_POST
@permission_required("profiles.create")
def profile_wizard(request: AuthenticatedHttpRequest, wizard: str, step: str) -> HttpResponse:
    wiz = Wizard.load(request, wizard)
    if step not in wiz.steps:
        raise Http404
    if request.method == "GET":
        if not wiz.reachable(step):
            return redirect("profiles:wizard", wizard=wiz.id, step=wiz.first_incomplete())
        return _render_step(request, wiz, step, None if step == "review" else wiz.form(step))
    action = request.POST.get("action", "next")
    if step == "review":
        return (
            _create_from_wizard(request, wiz) if action == "create" else _go(request, wiz, wiz.previous(step))
        )
    wiz.store(step, request.POST)
    if action == "back":
        # Keep what was typed, valid or not; it is checked again on the way forward.
        wiz.mark(step, wiz.form(step).is_valid())
        return _go(request, wiz, wiz.previous(step))
    form = wiz.form(step)
    valid = form.is_valid()
    wiz.mark(step, valid)
    if not valid:
        return _render_step(request, wiz, step, form, status=400)
    if action == "add_rule":
        return _go(request, wiz, step)
    return _go(request, wiz, wiz.next(step))


def _create_from_wizard(request: AuthenticatedHttpRequest, wiz: Wizard) -> HttpResponse:
    draft, failed = wiz.draft()
    if draft is None:
        assert failed is not None
        return _go(request, wiz, failed)
    with refusal.shown(request):
        profile = services.profile_create(actor=Actor.from_request(request), draft=draft)
        wiz.finish()
        messages.success(request, f"Profile {profile.name} created.")
        return _redirect(request, reverse("profiles:detail", args=[profile.code]))
    wiz.mark("basics", False)
    return _go(request, wiz, "basics")


# --- One profile -------------------------------------------------------------


@require_GET
@permission_required("profiles.read")
def profile_detail(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    profile = get_profile(request, code)
    evaluation = evaluate(profile)
    summary = evaluation.summary()
    context = {
        "profile": profile,
        "summary": summary,
        "device_counts": [(s, STATE_LABELS[s], summary.devices[s]) for s in STATUSES],
        "user_counts": [(s, STATE_LABELS[s], summary.users[s]) for s in STATUSES],
        "lints": lint(evaluation, summary=summary),
        "sections": profile_sections(request, profile),
        "tab": "overview",
        "can": _can(request, profile),
        **NAV,
    }
    return render(request, "profiles/detail.html", context)


@require_GET
@permission_required("profiles.read")
def profile_properties(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    profile = get_profile(request, code)
    assignments = list(profile.assignments.select_related("group"))
    context = {
        "profile": profile,
        "includes": [a.group for a in assignments if a.mode == ProfileAssignment.Mode.INCLUDE],
        "excludes": [a.group for a in assignments if a.mode == ProfileAssignment.Mode.EXCLUDE],
        "rules": list(profile.applicability_rules.all()),
        "tab": "properties",
        "can": _can(request, profile),
        **NAV,
    }
    return render(request, "profiles/properties.html", context)


SECTIONS = {
    "basics": ("Basics", "update"),
    "settings": ("Configuration settings", "update"),
    "scope": ("Scope tags", "update"),
    "assignments": ("Assignments", "assign"),
    "rules": ("Applicability rules", "update"),
}


def _section_form(request: AuthenticatedHttpRequest, profile: Profile, section: str, data: Any) -> Any:
    initial: dict[str, Any]
    if section == "basics":
        initial = {"name": profile.name, "description": profile.description}
        return BasicsForm(data, profile=profile, initial=initial)
    if section == "settings":
        packages = "\n".join(profile.silent_access_packages or [])
        initial = {"certificate_access": profile.certificate_access, "silent_access_packages": packages}
        return SettingsForm(data, platform=profile.platform, locked=True, initial=initial)
    if section == "scope":
        initial = {"scope_tags": list(profile.scope_tags.values_list("pk", flat=True))}
        return ScopeTagsForm(data, admin=request.user, permission="profiles.update", initial=initial)
    if section == "assignments":
        assignments = list(profile.assignments.all())
        initial = {
            "all_users": profile.all_users,
            "all_devices": profile.all_devices,
            "include_groups": [a.group_id for a in assignments if a.mode == ProfileAssignment.Mode.INCLUDE],
            "exclude_groups": [a.group_id for a in assignments if a.mode == ProfileAssignment.Mode.EXCLUDE],
        }
        return AssignmentsForm(data, initial=initial)
    rules = [RuleSpec.of(rule) for rule in profile.applicability_rules.all()]
    return RuleFormSet(data, prefix="rules", initial=rule_initial(rules))


def _save_section(request: AuthenticatedHttpRequest, profile: Profile, section: str, form: Any) -> None:
    actor = Actor.from_request(request)
    if section == "basics":
        services.profile_update_basics(actor=actor, profile=profile, **form.cleaned_data)
    elif section == "settings":
        services.profile_update_settings(
            actor=actor,
            profile=profile,
            certificate_access=form.cleaned_data.get("certificate_access", ""),
            silent_access_packages=form.cleaned_data.get("silent_access_packages", []),
        )
    elif section == "scope":
        services.profile_set_scope_tags(
            actor=actor, admin=request.user, profile=profile, tags=form.cleaned_data["scope_tags"]
        )
    elif section == "assignments":
        data = form.cleaned_data
        services.profile_set_assignments(
            actor=actor,
            profile=profile,
            all_users=data["all_users"],
            all_devices=data["all_devices"],
            include=data["include_groups"],
            exclude=data["exclude_groups"],
        )
    else:
        services.profile_set_rules(actor=actor, profile=profile, rules=form.specs())


@require_GET_POST
@permission_required("profiles.read")
def profile_edit(request: AuthenticatedHttpRequest, code: str, section: str) -> HttpResponse:
    if section not in SECTIONS:
        raise Http404
    label, action = SECTIONS[section]
    profile = get_profile(request, code, write=action)
    if section == "rules" and profile.platform != Platform.WINDOWS:
        raise Http404
    if section == "settings" and profile.platform != Platform.ANDROID_FULLY_MANAGED:
        raise Http404  # intended purpose and KSP are read-only after creation
    form = _section_form(request, profile, section, request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid() and request.POST.get("action") != "add_rule":
            with refusal.shown(request):
                _save_section(request, profile, section, form)
                messages.success(request, f"{label} saved.")
                return redirect("profiles:properties", code=profile.code)
        status = 400 if not form.is_valid() else 200
        if request.POST.get("action") == "add_rule" and form.is_valid():
            form = RuleFormSet(prefix="rules", initial=rule_initial(form.specs()))
    context = {"profile": profile, "form": form, "section": section, "label": label, **NAV}
    return render(request, "profiles/edit.html", context, status=status)


@require_GET_POST
@permission_required("profiles.delete")
def profile_delete(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    profile = get_profile(request, code, write="delete")
    if request.method == "POST":
        name = profile.name
        services.profile_delete(actor=Actor.from_request(request), profile=profile)
        messages.success(request, f"Profile {name} deleted.")
        return _redirect(request, reverse("profiles:list"))
    return render(request, "profiles/confirm_delete.html", {"profile": profile, **NAV})


@require_GET_POST
@permission_required("profiles.create")
def profile_duplicate(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    profile = get_profile(request, code)
    initial = {"name": f"{profile.name} - Copy", "description": profile.description}
    form = DuplicateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        copy = services.profile_duplicate(
            actor=Actor.from_request(request), profile=profile, **form.cleaned_data
        )
        messages.success(request, f"Profile {copy.name} created as a copy of {profile.name}.")
        return redirect("profiles:properties", code=copy.code)
    status = 400 if form.is_bound else 200
    return render(
        request, "profiles/duplicate.html", {"profile": profile, "form": form, **NAV}, status=status
    )

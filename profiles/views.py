"""Devices > Configuration profiles: list, creation wizard, overview, properties, status reports."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect, push_url

from directory.models import DirectoryUser, Platform
from portal import access
from portal.access import permission_required
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest
from portal.lib.spreadsheet import Echo, spreadsheet_safe
from profiles import services
from profiles.evaluation import (
    EXCLUDED,
    STATE_LABELS,
    STATUSES,
    Evaluation,
    TargetSpec,
    evaluate,
    lint,
    profiles_for_user,
)
from profiles.forms import (
    AssignmentsForm,
    BasicsForm,
    CreateProfileForm,
    DuplicateForm,
    ProfileFilterForm,
    ReportFilterForm,
    RuleFormSet,
    ScopeTagsForm,
    SettingsForm,
    UserReportFilterForm,
    rule_initial,
)
from profiles.models import Profile, ProfileAssignment
from profiles.wizard import STEP_LABELS, Wizard, draft_spec

require_GET_POST = require_http_methods(["GET", "POST"])
PAGE_SIZE = 50
NAV = {"nav_active": "profiles"}


def _profile(request: AuthenticatedHttpRequest, code: Any, write: str | None = None) -> Profile:
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
        evaluation = Evaluation(draft_spec(draft))
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
    try:
        profile = services.profile_create(actor=Actor.from_request(request), draft=draft)
    except ValidationError as exc:
        wiz.mark("basics", False)
        messages.error(request, " ".join(exc.messages))
        return _go(request, wiz, "basics")
    wiz.finish()
    messages.success(request, f"Profile {profile.name} created.")
    return _redirect(request, reverse("profiles:detail", args=[profile.code]))


# --- One profile -------------------------------------------------------------


@require_GET
@permission_required("profiles.read")
def profile_detail(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    profile = _profile(request, code)
    evaluation = evaluate(profile)
    summary = evaluation.summary()
    context = {
        "profile": profile,
        "summary": summary,
        "device_counts": [(s, STATE_LABELS[s], summary.devices[s]) for s in STATUSES],
        "user_counts": [(s, STATE_LABELS[s], summary.users[s]) for s in STATUSES],
        "lints": lint(evaluation, summary=summary),
        "tab": "overview",
        "can": _can(request, profile),
        **NAV,
    }
    return render(request, "profiles/detail.html", context)


@require_GET
@permission_required("profiles.read")
def profile_properties(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    profile = _profile(request, code)
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
        return ScopeTagsForm(data, admin=request.user, initial=initial)
    if section == "assignments":
        assignments = list(profile.assignments.all())
        initial = {
            "all_users": profile.all_users,
            "all_devices": profile.all_devices,
            "include_groups": [a.group_id for a in assignments if a.mode == ProfileAssignment.Mode.INCLUDE],
            "exclude_groups": [a.group_id for a in assignments if a.mode == ProfileAssignment.Mode.EXCLUDE],
        }
        return AssignmentsForm(data, initial=initial)
    return RuleFormSet(
        data, prefix="rules", initial=rule_initial(list(TargetSpec.for_profile(profile).rules))
    )


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
    profile = _profile(request, code, write=action)
    if section == "rules" and profile.platform != Platform.WINDOWS:
        raise Http404
    if section == "settings" and profile.platform != Platform.ANDROID_FULLY_MANAGED:
        raise Http404  # intended purpose and KSP are read-only after creation
    form = _section_form(request, profile, section, request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid() and request.POST.get("action") != "add_rule":
            try:
                _save_section(request, profile, section, form)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
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
    profile = _profile(request, code, write="delete")
    if request.method == "POST":
        name = profile.name
        services.profile_delete(actor=Actor.from_request(request), profile=profile)
        messages.success(request, f"Profile {name} deleted.")
        return _redirect(request, reverse("profiles:list"))
    return render(request, "profiles/confirm_delete.html", {"profile": profile, **NAV})


@require_GET_POST
@permission_required("profiles.create")
def profile_duplicate(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    profile = _profile(request, code)
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


# --- Status reports ----------------------------------------------------------


def _report_rows(profile: Profile, form: ReportFilterForm) -> tuple[Any, QuerySet[Any]]:
    evaluation = evaluate(profile)
    data = form.cleaned_data if form.is_bound else {"status": "", "q": ""}
    states = [data["status"]] if data.get("status") else list(STATUSES)
    rows = evaluation.device_rows(states).order_by("name", "pk")
    if data.get("q"):
        rows = rows.filter(Q(name__icontains=data["q"]) | Q(primary_user__upn__icontains=data["q"]))
    return evaluation, rows


def _describe(evaluation: Any, devices: list[Any]) -> list[dict[str, Any]]:
    excluded = evaluation.excluding_groups(
        user_ids=[d.primary_user_id for d in devices if d.primary_user_id],
        device_ids=[d.pk for d in devices],
    )
    described = []
    for device in devices:
        result = evaluation.outcome(device.flags)
        by = ""
        if result.state == EXCLUDED:
            by = excluded["user"].get(device.primary_user_id, "") or excluded["device"].get(device.pk, "")
        described.append(
            {
                "device": device,
                "state": result.state,
                "state_label": STATE_LABELS[result.state],
                "reason": evaluation.explain(result.reason, excluded_by=by, device=device),
            }
        )
    return described


@require_GET
@permission_required("profiles.read")
def profile_report(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    profile = _profile(request, code)
    form = ReportFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        context = {"profile": profile, "form": form, "tab": "report", **NAV}
        return render(request, "profiles/report.html", context, status=400)
    evaluation, rows = _report_rows(profile, form)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "profile": profile,
        "form": form,
        "page": page,
        "rows": _describe(evaluation, list(page.object_list)),
        "query": query.urlencode(),
        "tab": "report",
        **NAV,
    }
    template = "profiles/report.html#results" if request.htmx else "profiles/report.html"
    return render(request, template, context)


@require_GET
@permission_required("profiles.read")
def profile_report_csv(request: AuthenticatedHttpRequest, code: str) -> HttpResponse | StreamingHttpResponse:
    profile = _profile(request, code)
    form = ReportFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return HttpResponse("Invalid filters", status=400, content_type="text/plain")
    evaluation, rows = _report_rows(profile, form)
    writer = csv.writer(Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(
            [
                "Device",
                "User",
                "Platform",
                "OS edition",
                "OS version",
                "Status",
                "Reason",
                "Last check-in (UTC)",
            ]
        )
        chunk: list[Any] = []
        for device in rows.iterator(chunk_size=2000):
            chunk.append(device)
            if len(chunk) == 2000:
                yield from _csv_rows(writer, evaluation, chunk)
                chunk = []
        yield from _csv_rows(writer, evaluation, chunk)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="profile-{profile.code}-devices.csv"'
    return response


def _csv_rows(writer: Any, evaluation: Any, devices: list[Any]) -> Iterator[str]:
    for row in _describe(evaluation, devices):
        device = row["device"]
        yield writer.writerow(
            [
                spreadsheet_safe(device.name),
                spreadsheet_safe(device.primary_user.upn if device.primary_user else ""),
                device.get_platform_display(),
                device.get_os_edition_display() if device.os_edition else "",
                spreadsheet_safe(device.os_version),
                row["state_label"],
                spreadsheet_safe(row["reason"]),
                device.last_check_in.strftime("%Y-%m-%dT%H:%M:%SZ") if device.last_check_in else "",
            ]
        )


# --- User status report --------------------------------------------------------


def _user_report_rows(profile: Profile, form: UserReportFilterForm) -> tuple[Evaluation, QuerySet[Any]]:
    evaluation = evaluate(profile)
    data = form.cleaned_data if form.is_bound else {"status": "", "q": ""}
    users = evaluation.user_rows([data["status"]] if data.get("status") else None).order_by("upn", "pk")
    if data.get("q"):
        q = data["q"]
        users = users.filter(Q(upn__icontains=q) | Q(display_name__icontains=q) | Q(mail__icontains=q))
    return evaluation, users


@require_GET
@permission_required("profiles.read")
def user_report(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    profile = _profile(request, code)
    form = UserReportFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        context = {"profile": profile, "form": form, "tab": "user_report", **NAV}
        return render(request, "profiles/user_report.html", context, status=400)
    evaluation, users = _user_report_rows(profile, form)
    page = Paginator(users, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "profile": profile,
        "form": form,
        "page": page,
        "rows": evaluation.user_details(list(page.object_list)),
        "query": query.urlencode(),
        "tab": "user_report",
        **NAV,
    }
    template = "profiles/user_report.html#results" if request.htmx else "profiles/user_report.html"
    return render(request, template, context)


@require_GET
@permission_required("profiles.read")
def user_report_csv(request: AuthenticatedHttpRequest, code: str) -> HttpResponse | StreamingHttpResponse:
    profile = _profile(request, code)
    form = UserReportFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return HttpResponse("Invalid filters", status=400, content_type="text/plain")
    evaluation, users = _user_report_rows(profile, form)
    writer = csv.writer(Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(["User", "Display name", "Status", "Reason", "Devices"])
        chunk: list[DirectoryUser] = []
        for user_obj in users.iterator(chunk_size=2000):
            chunk.append(user_obj)
            if len(chunk) == 2000:
                yield from _user_csv_rows(writer, evaluation, chunk)
                chunk = []
        yield from _user_csv_rows(writer, evaluation, chunk)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="profile-{profile.code}-users.csv"'
    return response


def _user_csv_rows(writer: Any, evaluation: Evaluation, users: list[DirectoryUser]) -> Iterator[str]:
    for row in evaluation.user_details(users) if users else []:
        yield writer.writerow(
            [
                spreadsheet_safe(row.user.upn),
                spreadsheet_safe(row.user.display_name),
                row.state_label,
                spreadsheet_safe(row.reason),
                spreadsheet_safe(row.devices_text),
            ]
        )


# --- Per user ----------------------------------------------------------------


@require_GET
@permission_required("profiles.read")
def user_profiles(request: AuthenticatedHttpRequest, object_id: str) -> HttpResponse:
    if not access.has_perm(request.user, "directory.read"):
        raise PermissionDenied
    try:
        user_obj = DirectoryUser.objects.get(object_id=object_id)
    except (DirectoryUser.DoesNotExist, ValueError) as exc:
        raise Http404 from exc
    results = profiles_for_user(user_obj, profiles=access.scoped(Profile.objects.all(), request.user))
    context = {"directory_user": user_obj, "user_profiles": results, **NAV}
    template = "profiles/_user_profiles.html" if request.htmx else "profiles/user_profiles.html"
    return render(request, template, context)

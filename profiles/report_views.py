"""A profile's status reports (devices and users, with their CSV exports) and what reaches one directory user."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from directory.models import DirectoryUser
from portal import access
from portal.access import permission_required
from portal.http import AuthenticatedHttpRequest
from portal.lib.spreadsheet import csv_download
from profiles import states as reported_states
from profiles.forms import ReportFilterForm, UserReportFilterForm
from profiles.models import DeliveryStatus, Profile
from profiles.reports import Evaluation, evaluate, profiles_for_user
from profiles.targeting import EXCLUDED, STATE_LABELS, STATUSES
from profiles.views import NAV, PAGE_SIZE, get_profile

# Rows of a CSV export evaluated together: the queries per chunk are fixed, the memory bounded.
CSV_CHUNK = 2000

# --- Status reports ----------------------------------------------------------


def _report_rows(profile: Profile, form: ReportFilterForm) -> tuple[Any, QuerySet[Any]]:
    evaluation = evaluate(profile)
    data = form.cleaned_data if form.is_bound else {"status": "", "q": ""}
    states = [data["status"]] if data.get("status") else list(STATUSES)
    rows = evaluation.device_rows(states).order_by("name", "pk")
    if data.get("q"):
        rows = rows.filter(Q(name__icontains=data["q"]) | Q(primary_user__upn__icontains=data["q"]))
    error = (data.get("error") or "").strip()
    reported = reported_states.reported(profile_id=profile.pk, device_id=OuterRef("pk"), error_code=error)
    if error and reported is not None:
        rows = rows.filter(Exists(reported))
    return evaluation, rows


@dataclass
class Delivered:
    """What a device reported for this profile's certificates: how many, and the latest failure."""

    certificates: int = 0
    error_code: str = ""
    error_message: str = ""
    changed_at: datetime | None = None
    portal: bool = False  # this portal's check-ins reported on it
    intune: bool = False  # Intune's status report (read by the status sync) names it


def _delivered(profile_id: int | None, device_ids: list[int]) -> dict[int, Delivered]:
    """The reported states of a page of devices, in one query."""
    rows = reported_states.reported(profile_id=profile_id, device_id__in=device_ids)
    found: dict[int, Delivered] = {}
    if rows is None or profile_id is None:
        return found
    values = rows.order_by("changed_at").values_list(
        "device_id", "certificate_thumbprint", "error_code", "error_message", "changed_at", "source"
    )
    for device_id, thumbprint, code, message, changed_at, source in values:
        seen = found.setdefault(device_id, Delivered())
        seen.intune, seen.portal = seen.intune or source == "intune", seen.portal or source != "intune"
        seen.certificates += 1 if thumbprint and source != "intune" else 0
        seen.changed_at = changed_at
        if code:
            seen.error_code, seen.error_message = code, message
    return found


def _describe(evaluation: Any, devices: list[Any]) -> list[dict[str, Any]]:
    excluded = evaluation.excluding_groups(
        user_ids=[d.primary_user_id for d in devices if d.primary_user_id],
        device_ids=[d.pk for d in devices],
    )
    delivered = _delivered(evaluation.spec.profile_id, [d.pk for d in devices])
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
                "delivered": delivered.get(device.pk, Delivered()),
            }
        )
    return described


@require_GET
@permission_required("profiles.read")
def profile_report(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    profile = get_profile(request, code)
    form = ReportFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        context = {"profile": profile, "form": form, "tab": "report", **NAV}
        return render(request, "profiles/report.html", context, status=400)
    evaluation, rows = _report_rows(profile, form)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    summary = evaluation.summary()
    context = {
        "profile": profile,
        "form": form,
        "page": page,
        "rows": _describe(evaluation, list(page.object_list)),
        "query": query.urlencode(),
        "counts": [(s, STATE_LABELS[s], summary.devices[s]) for s in STATUSES],
        "failed": summary.devices[DeliveryStatus.ERROR],
        "can_retry": access.can(request.user, "profiles.resend", profile),
        "intune_last_sync": reported_states.intune_last_sync(),
        "intune": reported_states.intune_profile_summary(profile.pk),
        "tab": "report",
        **NAV,
    }
    template = "profiles/report.html#results" if request.htmx else "profiles/report.html"
    return render(request, template, context)


@require_GET
@permission_required("profiles.read")
def profile_report_csv(request: AuthenticatedHttpRequest, code: str) -> HttpResponse | StreamingHttpResponse:
    profile = get_profile(request, code)
    form = ReportFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return HttpResponse("Invalid filters", status=400, content_type="text/plain")
    evaluation, rows = _report_rows(profile, form)
    header = [
        "Device",
        "User",
        "Platform",
        "OS edition",
        "OS version",
        "Status",
        "Reason",
        "Certificates reported",
        "Source",
        "Error code",
        "Error message",
        "Last change (UTC)",
        "Last check-in (UTC)",
    ]

    def values() -> Iterator[list[Any]]:
        for devices in _chunks(rows.iterator(chunk_size=CSV_CHUNK)):
            for row in _describe(evaluation, devices):
                device = row["device"]
                yield [
                    device.name,
                    device.primary_user.upn if device.primary_user else "",
                    device.get_platform_display(),
                    device.get_os_edition_display() if device.os_edition else "",
                    device.os_version,
                    row["state_label"],
                    row["reason"],
                    row["delivered"].certificates,
                    _sources(row["delivered"]),
                    row["delivered"].error_code,
                    row["delivered"].error_message,
                    _utc(row["delivered"].changed_at),
                    _utc(device.last_check_in),
                ]

    return csv_download(f"profile-{profile.code}-devices.csv", header, values())


def _sources(delivered: Delivered) -> str:
    return "; ".join(
        n for n, on in (("portal", delivered.portal), ("source: Intune", delivered.intune)) if on
    )


def _utc(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def _chunks(rows: Iterator[Any]) -> Iterator[list[Any]]:
    """``rows`` in lists of ``CSV_CHUNK``: each list is evaluated with a fixed number of queries."""
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CSV_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


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
    profile = get_profile(request, code)
    form = UserReportFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        context = {"profile": profile, "form": form, "tab": "user_report", **NAV}
        return render(request, "profiles/user_report.html", context, status=400)
    evaluation, users = _user_report_rows(profile, form)
    page = Paginator(users, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    summary = evaluation.summary()
    context = {
        "counts": [(s, STATE_LABELS[s], summary.users[s]) for s in STATUSES],
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
    profile = get_profile(request, code)
    form = UserReportFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return HttpResponse("Invalid filters", status=400, content_type="text/plain")
    evaluation, users = _user_report_rows(profile, form)

    def values() -> Iterator[list[Any]]:
        for chunk in _chunks(users.iterator(chunk_size=CSV_CHUNK)):
            for row in evaluation.user_details(chunk):
                yield [row.user.upn, row.user.display_name, row.state_label, row.reason, row.devices_text]

    header = ["User", "Display name", "Status", "Reason", "Devices"]
    return csv_download(f"profile-{profile.code}-users.csv", header, values())


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

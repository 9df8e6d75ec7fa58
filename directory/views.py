"""Browse and search the tenant directory, and import it from CSV."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods

from directory import imports, memberships
from directory.forms import DeviceFilterForm, GroupFilterForm, ImportForm, ListFilterForm, UserFilterForm
from directory.models import Device, DirectoryUser, Group, GroupDeviceMember, GroupUserMember
from directory.panels import device_panels, user_and_clock, user_panels
from portal import access, summaries
from portal.access import permission_required
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest
from portal.lib.lean import Prepared
from portal.lib.listing import filter_state, query_key
from portal.lib.paging import CountAsFarAsShown

PAGE_SIZE = 50


def _can_import(request: AuthenticatedHttpRequest) -> bool:
    return access.has_perm(request.user, "directory.create") and access.has_perm(
        request.user, "directory.update"
    )


def _sort_links(request: AuthenticatedHttpRequest, form: ListFilterForm) -> dict[str, dict[str, str]]:
    """For each sortable column: the URL that sorts by it (toggling direction) and its aria-sort state."""
    current = form.current_sort
    links = {}
    for key in form.SORTS:
        query = request.GET.copy()
        query.pop("page", None)
        query["sort"] = f"-{key}" if current == key else key
        state = "ascending" if current == key else "descending" if current == f"-{key}" else "none"
        links[key] = {"url": f"?{query.urlencode()}", "state": state}
    return links


def _list_page(
    request: AuthenticatedHttpRequest,
    form_class: type[ListFilterForm],
    queryset: Callable[[], QuerySet[Any]],
    template: str,
    nav: str,
) -> HttpResponseBase:
    """Render a filtered, sorted, paginated list; only its results fragment when htmx asks.

    The whole page is kept per query and viewer scope until the directory changes
    (``portal.summaries.page``), its results piece too for htmx; pages count only as far as they
    show (``CountAsFarAsShown``). ``queryset`` builds the rows' queryset, only when they are rendered:
    building an annotated one costs more than showing a kept page.
    """
    if request.htmx:
        answer = _list_context(request, form_class, queryset, template, nav)
        return answer if isinstance(answer, HttpResponseBase) else HttpResponse(answer["results"])
    return summaries.page(
        request,
        template,
        lambda: _list_context(request, form_class, queryset, template, nav),
        params=query_key(request),
    )


def _list_context(
    request: AuthenticatedHttpRequest,
    form_class: type[ListFilterForm],
    queryset: Callable[[], QuerySet[Any]],
    template: str,
    nav: str,
) -> dict[str, Any] | HttpResponseBase:
    form = form_class(request.GET)
    context: dict[str, Any] = {
        "form": form,
        "nav_active": nav,
        "can_import": _can_import(request),
        "path": request.path,
    }

    def filters() -> str:
        return render_to_string("directory/_filters.html", {"form": form, "action": request.path})

    if not form.is_valid():
        context["results"] = render_to_string(f"{template}#results", context)
        context["filters"] = filters()
        return render(request, template, context, status=400)
    query = request.GET.copy()
    query.pop("page", None)
    context |= {"query": query.urlencode(), **filter_state(form)}

    def results() -> str:
        number = request.GET.get("page")
        rows = form.apply(queryset())
        # Rows that tie on the chosen ordering keep one order, so no page repeats or skips them.
        rows = rows.order_by(*rows.query.order_by, "pk")
        more = {
            "page": CountAsFarAsShown(rows, PAGE_SIZE, number=number).get_page(number),
            "sorts": _sort_links(request, form),
        }
        return render_to_string(f"{template}#results", context | more)

    params = query_key(request)
    context["results"] = summaries.fragment(request, template, results, params=params)
    if not request.htmx:
        # Only the whole page is rendered here, and it is kept (summaries.page): no piece of its own.
        context["filters"] = filters()
    return context


@require_GET
@permission_required("directory.read")
def users(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    return _list_page(request, UserFilterForm, DirectoryUser.objects.all, "directory/users.html", "users")


@require_GET
@permission_required("directory.read")
def user_detail(request: AuthenticatedHttpRequest, object_id: str) -> HttpResponseBase:
    """The help desk's page on one user: rendered once per scope and kept while nothing it shows changed.

    Kept whole (``summaries.page``) on the audit clock, the viewer's scope and the user's own clocks
    (``panels.user_and_clock``: delivery rows are written without audit events), so a device report
    shows at once.
    """
    found = user_and_clock(object_id)
    if found is None:
        raise Http404("No such user.")
    user, clock = found

    def context() -> dict[str, Any]:
        # Only when the page is rendered, not when a kept one is shown.
        return {
            "directory_user": user,
            "groups": _USER_GROUPS.rows(user.pk),
            "devices": _USER_DEVICES.rows(user.pk),
            "panels": user_panels(request, user),
            "nav_active": "users",
        }

    return summaries.page(request, "directory/user_detail.html", context, params=(user.pk, clock))


# The user page's lists, read on every first view of a user (see portal.lib.lean).
_USER_GROUPS = Prepared(
    lambda user_id: Group.objects.filter(user_members__user_id=user_id).order_by("display_name")
)
_USER_DEVICES = Prepared(lambda user_id: Device.objects.filter(primary_user_id=user_id).order_by("name"))


@require_GET
@permission_required("directory.read")
def troubleshoot(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Help desk entry point: find one user, then open everything known about them."""
    query = request.GET.get("q", "").strip()[:200]
    matches: list[DirectoryUser] = []
    if query:
        found = DirectoryUser.objects.filter(
            Q(upn__icontains=query) | Q(display_name__icontains=query) | Q(mail__icontains=query)
        )
        matches = list(found[:25])
        if len(matches) == 1:
            return redirect("directory:user", object_id=matches[0].object_id)
    return render(
        request,
        "directory/troubleshoot.html",
        {
            "nav_active": "troubleshoot",
            "query": query,
            "matches": matches,
            "can_audit": access.has_perm(request.user, "audit.read"),
        },
    )


@require_GET
@permission_required("directory.read")
def groups(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    # Counted per group by subqueries on the membership indexes: for the page's groups only (all of
    # them only when sorting by the count), never by joining every membership of the tenant.
    def queryset() -> QuerySet[Group]:
        return Group.objects.annotate(member_count=_members(GroupUserMember) + _members(GroupDeviceMember))

    return _list_page(request, GroupFilterForm, queryset, "directory/groups.html", "groups")


def _members(through: type[GroupUserMember] | type[GroupDeviceMember]) -> Coalesce:
    counted = (
        through.objects.filter(group=OuterRef("pk"))
        .order_by()
        .annotate(n=Func(F("pk"), function="COUNT"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


@require_GET
@permission_required("directory.read")
def group_detail(request: AuthenticatedHttpRequest, object_id: str) -> HttpResponse:
    group = get_object_or_404(Group, object_id=object_id)
    search = " ".join(request.GET.get("q", "").split())[:200]
    members: QuerySet[Any]
    if group.kind == Group.Kind.DEVICE:
        members = group.devices.select_related("primary_user").order_by("name")
        if search:
            members = members.filter(Q(name__icontains=search) | Q(primary_user__upn__icontains=search))
    else:
        members = group.users.order_by("display_name", "upn")
        if search:
            members = members.filter(Q(display_name__icontains=search) | Q(upn__icontains=search))
    context = {
        "group": group,
        "search": search,
        "query": urlencode({"q": search}) if search else "",
        "page": Paginator(members, PAGE_SIZE).get_page(request.GET.get("page")),
        "nav_active": "groups",
    }
    template = "directory/group_detail.html"
    return render(request, f"{template}#results" if request.htmx else template, context)


@require_GET
@permission_required("directory.read")
def devices(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    def queryset() -> QuerySet[Device]:
        return Device.objects.select_related("primary_user")

    return _list_page(request, DeviceFilterForm, queryset, "directory/devices.html", "devices")


@require_GET
@permission_required("directory.read")
def device_detail(request: AuthenticatedHttpRequest, device_id: str) -> HttpResponse:
    device = get_object_or_404(Device.objects.select_related("primary_user"), device_id=device_id)
    context = {
        "device": device,
        "groups": device.groups.order_by("display_name"),
        "panels": device_panels(request, device),
        "nav_active": "devices",
    }
    return render(request, "directory/device_detail.html", context)


@require_http_methods(["GET", "POST"])
@permission_required("directory.create")
@permission_required("directory.update")
def import_csv(request: AuthenticatedHttpRequest) -> HttpResponse:
    initial = {"kind": request.GET.get("kind", ImportForm.Kind.USERS)}
    form = ImportForm(request.POST or None, request.FILES or None, initial=initial)
    report = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            service = (
                imports.import_users_csv
                if form.cleaned_data["kind"] == ImportForm.Kind.USERS
                else memberships.import_memberships_csv
            )
            report = service(Actor.from_request(request), form.cleaned_data["file"])
        status = 200 if report is not None and report.ok else 400
    context = {"form": form, "report": report, "nav_active": "users", "imports": imports}
    return render(request, "directory/import.html", context, status=status)

"""Certificates: the list (and its CSV export), a certificate's page, deletes, the clean-up of expired
certificates, and the Certificates section of a directory user's page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from certs import lifecycle
from certs.forms import CertificateFilterForm, CleanupForm, SelectCertificatesForm
from certs.models import Certificate, ImportBatch
from certs.views import PAGE_SIZE
from directory.models import DirectoryUser
from portal import access, summaries
from portal.access import permission_required
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest
from portal.lib import refusal
from portal.lib.listing import filter_state, query_key
from portal.lib.paging import CountAsFarAsShown
from portal.lib.spreadsheet import csv_download


@require_GET
@permission_required("certificates.read")
def certificate_list(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    if request.GET.get("format") == "csv" or request.htmx:
        answer = _list_response(request)
        # Both answer with a response of their own (the export, or the results alone).
        return answer if isinstance(answer, HttpResponseBase) else render(request, "certs/list.html", answer)
    # The whole page, the same for every admin of the same scope until something changes: kept.
    return summaries.page(
        request, "certs/list.html", lambda: _list_response(request), params=query_key(request)
    )


def _list_response(request: AuthenticatedHttpRequest) -> dict[str, Any] | HttpResponseBase:
    """The list's context; or the response itself for a CSV export, htmx's results, or bad filters."""
    visible = access.scoped(
        Certificate.objects.select_related("user", "encryption_key", "batch"), request.user
    )
    form = CertificateFilterForm(request.GET)
    if not form.is_valid():
        invalid = {"form": form, "nav_active": "certificates"}
        invalid["filters"] = render_to_string("certs/list.html#filters", invalid)
        return render(request, "certs/list.html", invalid, status=400)
    rows = form.apply(visible.defer("pfx_blob", "encrypted_password"))
    if request.GET.get("format") == "csv":
        return _csv_export(rows)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "query": query.urlencode(),
        "path": request.path,
        "can_import": access.has_perm(request.user, "certificates.create"),
        "can_delete": access.has_perm(request.user, "certificates.delete"),
        **filter_state(form),
        "nav_active": "certificates",
    }

    def results() -> str:
        number = request.GET.get("page")
        # Rows that tie on the chosen ordering keep one order, so no page repeats or skips them.
        ordered = rows.order_by(*rows.query.order_by, "pk")
        paginator = CountAsFarAsShown(
            _link_batches(ordered, request), PAGE_SIZE, number=number, count_at_least=COUNT_AT_LEAST
        )
        more = {
            "page": paginator.get_page(number),
            "sorts": _sort_links(request, form),
            "reads_all": access.reads_all(request.user, Certificate),
        }
        return render_to_string("certs/list.html#results", context | more)

    params = query_key(request)
    context["results"] = summaries.fragment(request, "certs:list", results, params=params)
    if request.htmx:
        return HttpResponse(context["results"])
    # Only the whole page is rendered here, and it is kept (summaries.page): no piece of its own.
    context["filters"] = render_to_string("certs/list.html#filters", context)
    return context


# The certificate list counts at most this many rows (or as far as the page asked for).
COUNT_AT_LEAST = 1000


def _link_batches(rows: QuerySet[Certificate], request: AuthenticatedHttpRequest) -> QuerySet[Certificate]:
    """Mark the rows whose import the admin may open, so the list links only to pages they can see."""
    batch = access.scoped(ImportBatch.objects.filter(pk=OuterRef("batch_id")), request.user)
    return rows.annotate(batch_readable=Exists(batch))


def _sort_links(request: AuthenticatedHttpRequest, form: CertificateFilterForm) -> dict[str, dict[str, str]]:
    links = {}
    for key in form.SORTS:
        query = request.GET.copy()
        query.pop("page", None)
        query["sort"] = f"-{key}" if form.current_sort == key else key
        state = {key: "ascending", f"-{key}": "descending"}.get(form.current_sort, "none")
        links[key] = {"url": f"?{query.urlencode()}", "state": state}
    return links


def _csv_export(rows: QuerySet[Certificate]) -> StreamingHttpResponse:
    header = [
        "upn",
        "thumbprint",
        "purpose",
        "subject",
        "issuer",
        "serial",
        "not_before",
        "not_after",
        "key",
        "graph_state",
        "batch",
    ]
    values = (
        [
            c.upn,
            c.thumbprint,
            c.purpose,
            c.subject,
            c.issuer,
            c.serial,
            c.not_before.isoformat(),
            c.not_after.isoformat(),
            c.key_label,
            c.graph_state,
            c.batch.code if c.batch else "",
        ]
        for c in rows.iterator(chunk_size=500)
    )
    return csv_download("certificates.csv", header, values)


@require_GET
def certificate_detail(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    cert = access.get_for_user(
        request.user, Certificate.objects.select_related("user", "encryption_key", "batch"), code=code
    )
    batch = cert.batch
    context = {
        "cert": cert,
        "can_open_batch": batch is not None and access.can(request.user, "certificates.read", batch),
        "can_delete": access.can(request.user, "certificates.delete", cert),
        "nav_active": "certificates",
    }
    return render(request, "certs/detail.html", context)


@require_http_methods(["GET", "POST"])
def certificate_delete(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    cert = access.get_for_user(
        request.user, Certificate.objects.select_related("user"), write="delete", code=code
    )
    if request.method == "POST" and request.POST.get("confirm") == cert.thumbprint:
        user = cert.user
        lifecycle.certificate_delete(Actor.from_request(request), certificate=cert)
        messages.success(request, f"Certificate {cert.thumbprint} of {cert.upn} deleted.")
        return redirect("directory:user", user.object_id)
    status = 400 if request.method == "POST" else 200
    return render(request, "certs/delete.html", {"cert": cert, "nav_active": "certificates"}, status=status)


@require_http_methods(["GET", "POST"])
@permission_required("certificates.delete")
def remove_expired(request: AuthenticatedHttpRequest, object_id: str) -> HttpResponse:
    expired = access.scoped(Certificate.objects.filter(not_after__lte=timezone.now()), request.user, "delete")
    expired = expired.filter(user__object_id=object_id).defer("pfx_blob", "encrypted_password")
    form = SelectCertificatesForm(request.POST or None, choices=[(c.pk, str(c)) for c in expired])
    if request.method == "POST" and form.is_valid() and form.cleaned_data["confirm"]:
        chosen = expired.filter(pk__in=form.cleaned_data["certificates"])
        with refusal.shown(request):
            count = lifecycle.remove_expired(Actor.from_request(request), certificates=chosen)
            messages.success(request, f"{count} expired certificates removed.")
            return redirect("directory:user", object_id)
    user = DirectoryUser.objects.filter(object_id=object_id).first()
    context = {"expired": expired, "form": form, "directory_user": user, "nav_active": "users"}
    return render(
        request, "certs/remove_expired.html", context, status=400 if request.method == "POST" else 200
    )


@require_http_methods(["GET", "POST"])
@permission_required("certificates.delete")
def cleanup(request: AuthenticatedHttpRequest) -> HttpResponse:
    removable = access.scoped(Certificate.objects.all(), request.user, "delete").defer(
        "pfx_blob", "encrypted_password"
    )
    form = CleanupForm(request.POST if request.method == "POST" else (request.GET or CleanupForm.DEFAULTS))
    chosen = form.select(removable) if form.is_valid() else removable.none()
    count = chosen.count()
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["confirm"] and form.cleaned_data["expected"] == count and count:
            with refusal.shown(request, form):
                removed = lifecycle.remove_expired(Actor.from_request(request), certificates=chosen)
                messages.success(
                    request, f"{removed} expired certificates removed from the portal and from Intune."
                )
                return redirect("certs:list")
        else:
            form.add_error(
                None,
                "Tick the confirmation."
                if count == form.cleaned_data["expected"]
                else "The list changed: check it again.",
            )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "count": count,
        "page": Paginator(chosen.select_related("user"), PAGE_SIZE).get_page(request.GET.get("page")),
        "query": query.urlencode(),
        "nav_active": "certificates",
    }
    template = "certs/cleanup.html#results" if request.htmx else "certs/cleanup.html"
    return render(request, template, context, status=400 if form.errors else 200)


def user_panel(request: AuthenticatedHttpRequest, user: DirectoryUser) -> dict[str, Any] | None:
    """The Certificates section of a user's page (hidden from admins who may not read certificates)."""
    if not access.has_perm(request.user, "certificates.read"):
        return None
    # The rows show the import (a link when readable), not the encryption key.
    certificates = access.scoped(Certificate.objects.filter(user=user), request.user).select_related("batch")
    expired = Certificate.objects.filter(user=user, not_after__lte=timezone.now())
    return {
        "certificates": _link_batches(
            certificates.defer("pfx_blob", "encrypted_password").order_by("-not_after"), request
        ),
        # Offered only when some of them are the admin's to delete.
        "can_remove_expired": access.scoped(expired, request.user, "delete").exists(),
        "can_import": access.has_perm(request.user, "certificates.create"),
    }

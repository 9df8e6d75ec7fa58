"""Delivery pages: Devices > Monitor > Certificates (with CSV), Retry failed and Resend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from delivery import actions, reports
from delivery.forms import CertificateFilterForm
from delivery.models import DeliveryState
from directory.models import Device
from portal import access
from portal.access import permission_required
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest
from portal.lib.paging import CountAsFarAsShown
from portal.lib.spreadsheet import csv_download
from profiles import states
from profiles.models import Profile

PAGE_SIZE = 50
CSV_HEADER = [
    "Device",
    "Platform",
    "User",
    "Profile",
    "Thumbprint",
    "Serial",
    "Issuer",
    "Subject",
    "Expires (UTC)",
    "State",
    "Changed (UTC)",
    "Error code",
    "Error message",
    "Source",
]


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def csv_values(row: DeliveryState) -> list[Any]:
    cert = row.certificate
    return [
        row.device.name,
        row.device.get_platform_display(),
        row.user.upn if row.user else "",
        row.profile.name,
        row.certificate_thumbprint,
        cert.serial if cert else "",
        cert.issuer if cert else "",
        cert.subject if cert else "",
        _when(cert.not_after) if cert else "",
        row.get_status_display(),
        _when(row.changed_at),
        row.error_code,
        row.error_message,
        row.get_source_display(),
    ]


@require_GET
@permission_required("directory.read")
@permission_required("profiles.read")
def certificates(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = CertificateFilterForm(request.GET)
    context: dict[str, Any] = {"form": form, "nav_active": "devices"}
    if not form.is_valid():
        return render(request, "delivery/certificates.html", context, status=400)
    rows = reports.across_tenant(request.user, form.cleaned_data)
    query = request.GET.copy()
    query.pop("page", None)
    number = request.GET.get("page")
    context |= {
        "page": CountAsFarAsShown(rows, PAGE_SIZE, number=number).get_page(number),
        "query": query.urlencode(),
        "intune_last_sync": states.intune_last_sync(),
    }
    template = "delivery/certificates.html"
    return render(request, f"{template}#results" if request.htmx else template, context)


@require_GET
@permission_required("directory.read")
@permission_required("profiles.read")
def certificates_csv(request: AuthenticatedHttpRequest) -> HttpResponse | StreamingHttpResponse:
    form = CertificateFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponse("Invalid filters", status=400, content_type="text/plain")
    rows = reports.across_tenant(request.user, form.cleaned_data)

    def values() -> Iterator[list[Any]]:
        for row in rows.iterator(chunk_size=2000):
            yield csv_values(row)

    return csv_download("device-certificates.csv", CSV_HEADER, values())


@require_POST
@permission_required("profiles.resend")
def retry_failed(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    profile = access.get_for_user(request.user, Profile.objects.all(), write="resend", code=code)
    sent = actions.retry_failed(Actor.from_request(request), profile)
    if sent:
        messages.success(request, f"{sent} failed certificate{'s' if sent != 1 else ''} will be sent again.")
    else:
        messages.info(request, "No device is in Error for this profile.")
    return redirect("profiles:report", code=profile.code)


@require_POST
@permission_required("directory.read")
@permission_required("profiles.resend")
def resend(request: AuthenticatedHttpRequest, device_id: str) -> HttpResponse:
    device = get_object_or_404(Device, device_id=device_id)
    profiles = access.scoped(Profile.objects.all(), request.user, "resend")
    sent = actions.resend(Actor.from_request(request), device, profiles)
    if sent:
        messages.success(
            request,
            f"{device.name} gets {sent} certificate{'s' if sent != 1 else ''} again at its next check-in.",
        )
    else:
        messages.info(request, f"{device.name} has no certificate to resend in the profiles you manage.")
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(
        back, {request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(back)
    return HttpResponseRedirect(reverse("directory:device", args=[device.device_id]))

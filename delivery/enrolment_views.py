"""Devices > Enrolment: tenant enrolment secrets, one-time enrolment tokens and device credentials.

Devices are tenant-wide, like the directory they come from, and so are their tokens and
credentials: ``directory.read`` shows them, ``directory.update`` issues, cancels and revokes.
A secret enrols any device of the tenant, so creating or revoking one also needs an assignment
granting ``directory.update`` without scope tags (the whole tenant). Secrets and tokens are
shown once, in the response that creates them, and never stored.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from delivery import credentials
from delivery.forms import CredentialFilterForm, TokenIssueForm
from delivery.models import DeviceCredential, DeviceEnrollmentToken, EnrollmentSecret
from portal import access
from portal.access import AnyUser, permission_required
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest
from portal.lib import refusal
from portal.lib.paging import CountAsFarAsShown

NAV = "devices"
READ = "directory.read"
WRITE = "directory.update"
PAGE_SIZE = 50
TOKENS_SHOWN = 50
TEMPLATE = "delivery/enrolment.html"


def manages_secrets(user: AnyUser) -> bool:
    """Whether ``user`` may create and revoke secrets: ``directory.update`` over the whole tenant."""
    return access.has_perm(user, WRITE) and access.tag_limit(user, WRITE) is None


def _can(request: AuthenticatedHttpRequest) -> dict[str, bool]:
    return {"change": access.has_perm(request.user, WRITE), "secrets": manages_secrets(request.user)}


def _once(request: AuthenticatedHttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """A page that shows a secret once: rendered (never redirected to) and never cached."""
    response = render(request, template, {"nav_active": NAV} | context)
    response["Cache-Control"] = "no-store"
    return response


def _next(request: AuthenticatedHttpRequest, value: str) -> str:
    """``value`` if it is a page of this portal (the device page a form came from), else ""."""
    secure = request.is_secure()
    return value if url_has_allowed_host_and_scheme(value, {request.get_host()}, require_https=secure) else ""


def _back(request: AuthenticatedHttpRequest) -> HttpResponse:
    """To the page the form came from, else to Devices > Enrolment."""
    return HttpResponseRedirect(_next(request, request.POST.get("next", "")) or reverse("delivery:enrolment"))


def _confirm(request: AuthenticatedHttpRequest, context: dict[str, Any]) -> HttpResponse:
    back = _next(request, request.GET.get("next", ""))
    context |= {"nav_active": NAV, "next": back, "cancel": back or reverse("delivery:enrolment")}
    return render(request, "delivery/confirm_revoke.html", context)


def credentials_listed(user: AnyUser, data: dict[str, Any]) -> QuerySet[DeviceCredential]:
    rows = access.scoped(DeviceCredential.objects.select_related("device"), user)
    if data.get("q"):
        rows = rows.filter(device__name__icontains=data["q"])
    if data.get("state") == "active":
        rows = rows.filter(revoked_at=None)
    elif data.get("state") == "revoked":
        rows = rows.exclude(revoked_at=None)
    return rows.order_by("-enrolled_at", "-id")


@require_GET
@permission_required(READ)
def enrolment(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = CredentialFilterForm(request.GET)
    context: dict[str, Any] = {"nav_active": NAV, "form": form, "can": _can(request), "page": None}
    if not form.is_valid():
        return render(request, TEMPLATE, context, status=400)
    query = request.GET.copy()
    query.pop("page", None)
    number = request.GET.get("page")
    rows = credentials_listed(request.user, form.cleaned_data)
    context |= {"page": CountAsFarAsShown(rows, PAGE_SIZE, number=number).get_page(number)}
    context |= {"query": query.urlencode(), "next": request.get_full_path()}
    if request.htmx:
        return render(request, f"{TEMPLATE}#credentials", context)
    context["secrets"] = access.scoped(EnrollmentSecret.objects.all(), request.user)
    tokens = access.scoped(DeviceEnrollmentToken.objects.select_related("device"), request.user)
    context["tokens"] = tokens[:TOKENS_SHOWN]
    return render(request, TEMPLATE, context)


@require_POST
@permission_required(WRITE)
def secret_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not manages_secrets(request.user):
        raise PermissionDenied
    secret, value = credentials.secret_create(Actor.from_request(request))
    return _once(request, "delivery/secret_created.html", {"row": secret, "secret": value})


@require_http_methods(["GET", "POST"])
@permission_required(WRITE)
def secret_revoke(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    secret = access.get_for_user(
        request.user, EnrollmentSecret.objects.filter(revoked_at=None), write="update", code=code
    )
    if not manages_secrets(request.user):
        raise PermissionDenied
    if request.method == "POST":
        credentials.secret_revoke(Actor.from_request(request), secret)
        messages.success(request, f"Enrolment secret {secret.hint}… revoked: no device can enrol with it.")
        return redirect("delivery:enrolment")
    context = {
        "title": f"Revoke enrolment secret {secret.hint}…?",
        "explanation": "Devices and tools holding this secret can no longer enrol. Devices it already "
        "enrolled keep their own credentials. The audit log keeps the revocation.",
        "action": reverse("delivery:secret_revoke", args=[secret.code]),
    }
    return _confirm(request, context)


@require_http_methods(["GET", "POST"])
@permission_required(WRITE)
def token_issue(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = TokenIssueForm(request.POST or None, initial={"device": request.GET.get("device", "")[:255]})
    if request.method == "POST" and form.is_valid():
        device = form.cleaned_data["device"]
        with refusal.shown(request, form, field="device"):
            token, value = credentials.token_issue(
                Actor.from_request(request), device, hours=form.cleaned_data["hours"]
            )
            return _once(request, "delivery/token_created.html", {"token": token, "secret": value})
    return render(request, "delivery/token_form.html", {"nav_active": NAV, "form": form})


@require_POST
@permission_required(WRITE)
def token_cancel(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    token = access.get_for_user(
        request.user,
        DeviceEnrollmentToken.objects.select_related("device").filter(used_at=None),
        write="update",
        code=code,
    )
    with refusal.shown(request):
        credentials.token_cancel(Actor.from_request(request), token)
        messages.success(
            request, f"Enrolment token {token.hint}… cancelled: it can no longer enrol {token.device}."
        )
    return _back(request)


@require_http_methods(["GET", "POST"])
@permission_required(WRITE)
def credential_revoke(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    credential = access.get_for_user(
        request.user,
        DeviceCredential.objects.select_related("device").filter(revoked_at=None),
        write="update",
        code=code,
    )
    if request.method == "POST":
        credentials.credential_revoke(Actor.from_request(request), credential)
        messages.success(
            request, f"{credential.device.name}'s credential revoked: the device must enrol again."
        )
        return _back(request)
    context = {
        "title": f"Revoke the device credential of {credential.device.name}?",
        "explanation": "The device's next check-in or report is refused (credential_revoked) and it gets "
        "no certificate until it enrols again with a secret or a new token. The audit log keeps the revocation.",
        "action": reverse("delivery:credential_revoke", args=[credential.code]),
    }
    return _confirm(request, context)

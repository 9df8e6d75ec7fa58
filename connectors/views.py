"""Tenant administration > Connectors and tokens > Certificate connectors, and the connectors' section
of the encryption keys page (``certs.hooks``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from certs.models import EncryptionKey
from connectors import activity, enrolment, health, hooks
from connectors import rotation as key_rotation
from connectors import rotation as services
from connectors.forms import RenameForm, RotationForm, TokenForm
from connectors.models import Connector, EnrollmentToken, KeyRotation
from portal import access
from portal.access import permission_required
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest
from portal.lib import refusal

NAV = "tenant"


def _can(request: AuthenticatedHttpRequest, obj: Connector | KeyRotation | None = None) -> dict[str, bool]:
    """The actions to offer: on ``obj`` when given, so a page never offers what its view would refuse."""
    return {a: access.can(request.user, f"connectors.{a}", obj) for a in ("create", "update", "delete")}


@require_GET
@permission_required("connectors.read")
def connector_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    connectors = access.scoped(Connector.objects.prefetch_related("keys", "scope_tags"), request.user)
    tokens = access.scoped(
        EnrollmentToken.objects.filter(used_at=None, expires_at__gt=timezone.now()), request.user
    )
    context = {
        "nav_active": NAV,
        "connectors": connectors,
        "tokens": tokens,
        "cancellable": set(access.scoped(tokens, request.user, "delete").values_list("pk", flat=True)),
        "now": timezone.now(),
        "can": _can(request),
        "reads_all": access.reads_all(request.user, Connector),
        "sections": hooks.connectors_sections(request),
    }
    template = "connectors/list.html#rows" if request.htmx else "connectors/list.html"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@permission_required("connectors.create")
def token_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token, secret = enrolment.token_create(
            Actor.from_request(request),
            name=form.cleaned_data["name"],
            tags=access.creator_tags(request.user, "connectors"),
            ttl=timedelta(hours=form.cleaned_data["hours"]),
        )
        # Shown once: the page is rendered, not redirected to, and the secret is not stored.
        response = render(
            request, "connectors/token_created.html", {"nav_active": NAV, "token": token, "secret": secret}
        )
        response["Cache-Control"] = "no-store"
        return response
    return render(request, "connectors/token_form.html", {"nav_active": NAV, "form": form})


@require_POST
@permission_required("connectors.delete")
def token_cancel(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    token = access.get_for_user(
        request.user, EnrollmentToken.objects.filter(used_at=None), write="delete", code=code
    )
    with refusal.shown(request):
        enrolment.token_cancel(Actor.from_request(request), token)
        messages.success(
            request, f"Enrollment token {token.hint}… cancelled: it can no longer enroll a connector."
        )
    return redirect("connectors:list")


@require_GET
@permission_required("connectors.read")
def connector_detail(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    connector = access.get_for_user(request.user, Connector.objects.all(), code=code)
    context = {
        "nav_active": NAV,
        "connector": connector,
        "now": timezone.now(),
        "heartbeats": connector.heartbeats.all()[:50],
        "changes": connector.status_changes.all()[:50],
        "events": connector.events.all()[:100],
        "hours": activity.reencryptions_per_hour(connector),
        "keys": connector.keys.all(),
        "rename_form": RenameForm(initial={"name": connector.name}),
        "can": _can(request, connector),
    }
    return render(request, "connectors/detail.html", context)


@require_POST
@permission_required("connectors.update")
def connector_rename(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    connector = access.get_for_user(request.user, Connector.objects.all(), write="update", code=code)
    form = RenameForm(request.POST)
    if form.is_valid():
        enrolment.connector_rename(Actor.from_request(request), connector, name=form.cleaned_data["name"])
        messages.success(request, "Connector renamed.")
    else:
        messages.error(request, "Enter a name of at most 100 characters.")
    return redirect("connectors:detail", code=connector.code)


@require_POST
@permission_required("connectors.update")
def connector_state(request: AuthenticatedHttpRequest, code: str, action: str) -> HttpResponse:
    connector = access.get_for_user(request.user, Connector.objects.all(), write="update", code=code)
    change = {
        "disable": enrolment.connector_disable,
        "enable": enrolment.connector_enable,
        "revoke": enrolment.connector_revoke,
    }
    with refusal.shown(request):
        change[action](Actor.from_request(request), connector)
        messages.success(request, f"Connector {connector.name}: {connector.get_state_display().lower()}.")
    return redirect("connectors:detail", code=connector.code)


@require_http_methods(["GET", "POST"])
@permission_required("connectors.delete")
def connector_delete(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    connector = access.get_for_user(request.user, Connector.objects.all(), write="delete", code=code)
    if request.method == "POST":
        enrolment.connector_delete(Actor.from_request(request), connector)
        messages.success(request, f"Connector {connector.name} deleted.")
        return redirect("connectors:list")
    return render(request, "connectors/confirm_delete.html", {"nav_active": NAV, "connector": connector})


def keys_section(request: AuthenticatedHttpRequest, keys: QuerySet[EncryptionKey]) -> dict[str, Any] | None:
    """The connectors' section of the encryption keys page (which the connectors permissions guard):
    which connectors hold each of the admin's keys, and key rotation."""
    rotations = access.scoped(KeyRotation.objects.all(), request.user)[:20]
    return {
        "holdings": health.key_holders(keys),
        "rotations": [(r, services.rotation_progress(r)) for r in rotations],
        "form": RotationForm(keys=keys),
        "can": _can(request),
    }


@require_POST
@permission_required("connectors.update")
def rotation_start(request: AuthenticatedHttpRequest) -> HttpResponse:
    keys = access.scoped(EncryptionKey.objects.all(), request.user, "update")
    form = RotationForm(request.POST, keys=keys)
    if not form.is_valid():
        problems = [str(e) for errors in form.errors.values() for e in errors]
        messages.error(request, " ".join(problems) or "Choose two different keys you may change.")
        return redirect("certs:keys")
    with refusal.shown(request):
        rotation = key_rotation.rotation_start(
            Actor.from_request(request),
            from_key=form.cleaned_data["from_key"],
            to_key=form.cleaned_data["to_key"],
        )
        messages.success(
            request, f"Key rotation started: {rotation.total} certificate password(s) to re-wrap."
        )
        return redirect("connectors:rotation", code=rotation.code)
    return redirect("certs:keys")


@require_GET
@permission_required("connectors.read")
def rotation_detail(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    rotation = access.get_for_user(request.user, KeyRotation.objects.all(), code=code)
    context = {
        "nav_active": NAV,
        "rotation": rotation,
        "progress": key_rotation.rotation_progress(rotation),
        "failures": rotation.jobs.filter(state="failed")[:50],
        "sections": hooks.rotation_sections(request, rotation),
        "can": _can(request, rotation),
    }
    template = "connectors/rotation.html#progress" if request.htmx else "connectors/rotation.html"
    return render(request, template, context)


@require_POST
@permission_required("connectors.update")
def rotation_retry(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    rotation = access.get_for_user(request.user, KeyRotation.objects.all(), write="update", code=code)
    count = key_rotation.rotation_retry(Actor.from_request(request), rotation)
    messages.success(request, f"{count} failed job(s) queued again.")
    return redirect("connectors:rotation", code=rotation.code)

"""Tenant administration > Microsoft Intune: the Graph connection, uploads, reconcile and directory sync."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from certs.models import Certificate
from graph import directory_sync, profile_sync, reconcile, run_pages, uploads
from graph.connection import save_connection, test_connection
from graph.forms import ConnectionForm
from graph.models import ReconcileFinding, ReconcileRun, SyncRun, TenantConnection, UploadRecord
from portal import access
from portal.access import permission_required
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest
from portal.lib import refusal
from profiles.models import Profile


@require_GET
@permission_required("connectors.read")
def connection(request: AuthenticatedHttpRequest) -> HttpResponse:
    states = dict(UploadRecord.objects.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    context = {
        "connection": TenantConnection.current(),
        "upload_counts": [
            (label, states.get(value, 0), value) for value, label in UploadRecord.State.choices
        ],
        # The connection, its test and uploads all need connectors.update (see the views below).
        "can_update": access.has_perm(request.user, "connectors.update"),
        "outstanding": uploads.not_in_intune(access.scoped(Certificate.objects.all(), request.user)).count(),
        "profiles_outstanding": profile_sync.not_in_intune(
            access.scoped(Profile.objects.all(), request.user)
        ).count(),
        "can_send_profiles": access.has_perm(request.user, "profiles.update"),
        "held": uploads.held_for_unknown_users(
            uploads.not_in_intune(access.scoped(Certificate.objects.all(), request.user))
        ).count(),
        "failures": UploadRecord.objects.filter(
            state__in=[UploadRecord.State.FAILED, UploadRecord.State.DELETE_FAILED]
        ).order_by("-queued_at")[:20],
        "nav_active": "tenant",
    }
    return render(request, "graph/connection.html", context)


@require_http_methods(["GET", "POST"])
@permission_required("connectors.update")
def connection_edit(request: AuthenticatedHttpRequest) -> HttpResponse:
    current = TenantConnection.current()
    # Secrets are never put back into the form.
    shown = [name for name in ConnectionForm.base_fields if name not in {"secret", "certificate_pem"}]
    initial = {name: getattr(current or TenantConnection(), name) for name in shown}
    form = ConnectionForm(request.POST or None, initial=initial, has_credential=bool(current))
    if request.method == "POST" and form.is_valid():
        with refusal.shown(request, form):
            save_connection(Actor.from_request(request), form.to_input())
            messages.success(request, "Connection saved. Test it to check the sign-in.")
            return redirect("graph:connection")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "graph/connection_edit.html",
        {"form": form, "connection": current, "nav_active": "tenant"},
        status=status,
    )


@require_POST
@permission_required("connectors.update")
def connection_test(request: AuthenticatedHttpRequest) -> HttpResponse:
    with refusal.shown(request):
        tested = test_connection(Actor.from_request(request))
        if tested.test_ok:
            messages.success(request, "Signed in and read a page of users and certificates.")
        else:
            messages.error(request, f"The test failed: {tested.test_result.get('summary', '')}")
    return redirect("graph:connection")


@require_POST
@permission_required("connectors.update")
def upload_outstanding(request: AuthenticatedHttpRequest) -> HttpResponse:
    certificates = access.scoped(Certificate.objects.all(), request.user, "update")
    with refusal.shown(request):
        queued = uploads.upload_outstanding(Actor.from_request(request), certificates)
        held = uploads.held_for_unknown_users(uploads.not_in_intune(certificates)).count()
        message = f"{queued} certificate(s) queued for upload to Intune."
        if held:
            message += f" {held} not uploaded: Intune does not know their users (see Users, Source)."
        messages.success(request, message)
    return redirect(f"{reverse('graph:connection')}#uploads")


@require_GET
@permission_required("connectors.read")
def reconcile_report(request: AuthenticatedHttpRequest) -> HttpResponse:
    code = request.GET.get("run")
    run = get_object_or_404(ReconcileRun, code=code) if code else ReconcileRun.objects.first()
    kind = request.GET.get("kind", "")
    findings = run.findings.select_related("certificate") if run else ReconcileFinding.objects.none()
    if kind in ReconcileFinding.Kind.values:
        findings = findings.filter(kind=kind)
    context = {
        "run": run,
        "runs": ReconcileRun.objects.all()[:10],
        "findings": findings[:500],
        "kind": kind,
        "kinds": ReconcileFinding.Kind.choices,
        "actions": {k.value: v for k, v in reconcile.ACTIONS.items()},
        "can_update": access.has_perm(request.user, "connectors.update"),
        "nav_active": "tenant",
    }
    template = "graph/reconcile.html#results" if request.htmx else "graph/reconcile.html"
    return render(request, template, context)


@require_POST
@permission_required("connectors.update")
def reconcile_start(request: AuthenticatedHttpRequest) -> HttpResponse:
    run = run_pages.start_run(
        request,
        reconcile.start,
        started="Reconcile started. This page shows the result when the worker is done.",
        running="A reconcile is already running. This page shows its result when it is done.",
    )
    return redirect(f"{reverse('graph:reconcile')}?run={run.code}")


@require_POST
@permission_required("connectors.update")
def finding_resolve(request: AuthenticatedHttpRequest, pk: int, action: str) -> HttpResponse:
    finding = get_object_or_404(ReconcileFinding.objects.select_related("run", "certificate__user"), pk=pk)
    if finding.subject == ReconcileFinding.Subject.PROFILE and not access.has_perm(
        request.user, "profiles.update"
    ):
        raise PermissionDenied
    with refusal.shown(request):
        reconcile.resolve(Actor.from_request(request), finding, action)
        messages.success(request, f"{finding.get_resolution_display()}: {finding.upn}")
    return redirect(f"{reverse('graph:reconcile')}?run={finding.run.code}")


@require_GET
@permission_required("directory.read")
def sync_status(request: AuthenticatedHttpRequest) -> HttpResponse:
    return run_pages.runs_page(
        request, "graph/sync.html", SyncRun.objects.all(), update_permission="directory.update"
    )


@require_POST
@permission_required("directory.update")
def sync_start(request: AuthenticatedHttpRequest) -> HttpResponse:
    run_pages.start_run(
        request,
        directory_sync.start,
        started="Directory sync started.",
        running="A directory sync is already running.",
    )
    return redirect("graph:sync")

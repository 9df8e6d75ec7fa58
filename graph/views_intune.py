"""Intune's side of a profile: the section on the profile's overview, and sending it again."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from connectors.models import KeyRotation
from graph import key_resend, profile_sync
from graph.models import IntuneConnector, ProfileRecord, TenantConnection
from portal import access, audit
from portal.access import permission_required
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest
from portal.lib import refusal
from portal.models import AuditEvent
from profiles.models import Profile


def profile_section(request: AuthenticatedHttpRequest, profile: Profile) -> dict[str, Any] | None:
    """Whether the profile is in Intune, changed here and not yet sent, or failed (with Graph's request id)."""
    record = ProfileRecord.objects.filter(profile=profile).first()
    connected = TenantConnection.current() is not None
    if record is None and not connected:
        return None
    return {
        "profile": profile,
        "record": record,
        "connected": connected,
        "summary": (record.error or {}).get("summary", "") if record else "",
        "can_send": connected and access.can(request.user, "profiles.update", profile),
    }


def connectors_section(request: AuthenticatedHttpRequest) -> dict[str, Any] | None:
    """Microsoft's connectors as Intune lists them, beside the portal's own agents."""
    rows = list(IntuneConnector.objects.all())
    if not rows and TenantConnection.current() is None:
        return None
    return {
        "connectors": rows,
        "read_at": max((r.read_at for r in rows), default=None),
        "can_refresh": TenantConnection.current() is not None
        and access.has_perm(request.user, "connectors.update"),
    }


def rotation_section(request: AuthenticatedHttpRequest, rotation: KeyRotation) -> dict[str, Any] | None:
    """How many of the rotation's re-wrapped passwords Intune has received; the old key waits for all."""
    if TenantConnection.current() is None:
        return None
    ids = list(rotation.jobs.values_list("certificate_id", flat=True))
    counts = key_resend.rotation_counts(ids, rotation.from_fingerprint, rotation.to_fingerprint)
    return {"counts": counts, "rotation": rotation}


@require_POST
@permission_required("profiles.update")
def profile_send(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    profile = access.get_for_user(request.user, Profile.objects.all(), write="update", code=code)
    with transaction.atomic():
        profile_sync.queue(profile)
        audit.record(
            Actor.from_request(request),
            activity="Send profile to Intune",
            category=profile_sync.CATEGORY,
            operation=AuditEvent.Operation.ACTION,
            resources=[audit.resource(profile, type="PKCS imported certificate profile")],
        )
    messages.success(request, f"{profile.name} is queued for Intune.")
    return redirect("profiles:detail", code=profile.code)


@require_POST
@permission_required("profiles.update")
def profiles_send_outstanding(request: AuthenticatedHttpRequest) -> HttpResponse:
    profiles = access.scoped(Profile.objects.all(), request.user, "update")
    with refusal.shown(request):
        queued = profile_sync.send_outstanding(Actor.from_request(request), profiles)
        messages.success(request, f"{queued} profile(s) queued for Intune.")
    return redirect(f"{reverse('graph:connection')}#uploads")


@require_POST
@permission_required("connectors.update")
def intune_connectors_refresh(request: AuthenticatedHttpRequest) -> HttpResponse:
    from graph import tasks

    if TenantConnection.current() is None:
        messages.error(request, "Connect the tenant first.")
    else:
        transaction.on_commit(tasks.refresh_intune_connectors.delay)
        messages.success(request, "Reading the connectors Intune knows; this page shows them in a moment.")
    return redirect("connectors:list")

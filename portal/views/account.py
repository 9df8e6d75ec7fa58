from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from portal import access
from portal.http import AuthenticatedHttpRequest
from portal.models import RoleAssignment


@require_GET
def account_settings(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    assignments = (
        RoleAssignment.objects.filter(members=user).select_related("role").prefetch_related("scope_tags")
    )
    return render(
        request,
        "portal/account.html",
        {
            "assignments": assignments,
            "has_totp": Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists(),
            "mfa_required": access.requires_mfa(user),
            "permissions": sorted(access.permissions(user)),
        },
    )

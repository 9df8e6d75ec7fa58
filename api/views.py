"""Account > API tokens: an admin's own tokens and trusted Entra ID applications; a secret is shown once."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from api import tokens as token_services
from api.forms import ApplicationForm, TokenForm
from api.models import ApiToken, EntraApplication
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest
from portal.lib import refusal


@require_GET
def tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    context = {
        "tokens": ApiToken.objects.filter(user=request.user),
        "applications": EntraApplication.objects.filter(user=request.user),
        "entra": bool(settings.ENTRA_TENANT_ID and settings.API_ENTRA_AUDIENCE),
        "nav_active": "tenant",
    }
    return render(request, "api/tokens.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def token_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with refusal.shown(request, form):
            token, secret = token_services.token_create(
                Actor.from_request(request),
                user=request.user,
                name=form.cleaned_data["name"],
                days=form.cleaned_data["days"],
            )
            return render(request, "api/token_created.html", {"token": token, "secret": secret})
    status = 400 if form.errors else 200
    return render(request, "api/token_form.html", {"form": form, "nav_active": "tenant"}, status=status)


@require_POST
def token_revoke(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    token = get_object_or_404(ApiToken, user=request.user, code=code)
    with refusal.shown(request):
        token_services.token_revoke(Actor.from_request(request), token=token)
        messages.success(request, f"Token {token.name} revoked; it is refused from now on.")
    return redirect("api_pages:tokens")


@require_http_methods(["GET", "POST"])
def application_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ApplicationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with refusal.shown(request, form):
            app = token_services.application_add(
                Actor.from_request(request), user=request.user, **form.cleaned_data
            )
            messages.success(request, f"{app.name} may now call the API with your roles and scope tags.")
            return redirect("api_pages:tokens")
    status = 400 if form.errors else 200
    return render(request, "api/application_form.html", {"form": form, "nav_active": "tenant"}, status=status)


@require_POST
def application_revoke(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    app = get_object_or_404(EntraApplication, user=request.user, code=code)
    with refusal.shown(request):
        token_services.application_revoke(Actor.from_request(request), application=app)
        messages.success(request, f"{app.name} is no longer trusted.")
    return redirect("api_pages:tokens")

"""Tenant administration > Encryption keys: the one page for the keys, guarded by the connectors permissions.

Apps above certs add their sections to it through ``certs.hooks`` (the connectors app: which
connectors hold each key, and key rotation).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from certs import hooks
from certs import keys as key_services
from certs.forms import KeyForm
from certs.models import EncryptionKey
from portal import access
from portal.access import permission_required
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest
from portal.lib import refusal


def usable_keys(request: AuthenticatedHttpRequest) -> QuerySet[EncryptionKey]:
    """The keys the admin may read; importing with a key is using it, so imports offer only these."""
    return access.scoped(EncryptionKey.objects.all(), request.user, "read")


@require_GET
@permission_required("connectors.read")
def keys(request: AuthenticatedHttpRequest) -> HttpResponse:
    rows = usable_keys(request)
    context: dict[str, Any] = {
        "keys": rows,
        "sections": hooks.keys_sections(request, rows),
        "can_add": access.has_perm(request.user, "connectors.create"),
        "can_update": access.has_perm(request.user, "connectors.update"),
        "can_delete": access.has_perm(request.user, "connectors.delete"),
        "nav_active": "tenant",
    }
    return render(request, "certs/keys.html", context)


@require_http_methods(["GET", "POST"])
@permission_required("connectors.create")
def key_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    tags = access.creator_tags(request.user, "connectors")
    form = KeyForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        with refusal.shown(request, form, field="key_file"):
            data = dict(form.cleaned_data)
            key = key_services.key_add(
                Actor.from_request(request), tags=tags, data=data.pop("key_file"), **data
            )
            messages.success(request, f"Encryption key {key} added.")
            return redirect("certs:keys")
    status = 400 if form.errors else 200
    return render(request, "certs/key_add.html", {"form": form, "nav_active": "tenant"}, status=status)


@require_POST
def key_default(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    key = access.get_for_user(request.user, EncryptionKey.objects.all(), write="update", code=code)
    key_services.key_set_default(Actor.from_request(request), key=key)
    messages.success(request, f"{key} is now the default key for imports.")
    return redirect("certs:keys")


@require_POST
def key_retire(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    key = access.get_for_user(request.user, EncryptionKey.objects.all(), write="delete", code=code)
    with refusal.shown(request):
        key_services.key_retire(Actor.from_request(request), key=key)
        messages.success(request, f"{key} is retired: no password is wrapped to it any more.")
    return redirect("certs:keys")

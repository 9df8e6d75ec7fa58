"""Certificates > Drop folders: the folders of unattended imports, their sets and what became of each.

Reads need ``certificates.read`` over one of a folder's scope tags (as the import history does),
changes the write permission over one of them: ``create`` to make a folder or scan it (a scan
imports), ``update`` to edit, enable or disable it, ``delete`` to delete it. No page reads a set's
files: the manifest holds the passwords, and it lives only on the workers' disk until it is read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from api import dropfolder, dropsets
from api.common import usable_keys
from api.forms import DropFolderForm
from api.models import DropFolder, DropSet
from portal import access
from portal.access import permission_required
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest
from portal.lib import refusal
from portal.lib.paging import CountAsFarAsShown

NAV = "certificates"
PAGE_SIZE = 50
FOLDERS = DropFolder.objects.select_related("encryption_key", "owner")


def _can(request: AuthenticatedHttpRequest, folder: DropFolder | None = None) -> dict[str, bool]:
    """The actions to offer: on ``folder`` when given, so a page never offers what its view would refuse."""
    return {a: access.can(request.user, f"certificates.{a}", folder) for a in ("create", "update", "delete")}


@require_GET
@permission_required("certificates.read")
def folder_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    folders = list(access.scoped(FOLDERS.prefetch_related("scope_tags"), request.user))
    counts = dropsets.set_counts(f.pk for f in folders)
    context = {
        "rows": [(f, counts.get(f.pk, dropsets.SetCounts())) for f in folders],
        "root": Path(settings.API_DROP_ROOT).absolute(),
        "reads_all": access.reads_all(request.user, DropFolder),
        "can": _can(request),
        "nav_active": NAV,
    }
    return render(request, "api/drop_folders.html", context)


@require_http_methods(["GET", "POST"])
@permission_required("certificates.create")
def folder_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    keys = usable_keys(request.user)
    initial = {"encryption_key": keys.filter(is_default=True).first()}
    form = DropFolderForm(request.POST or None, keys=keys, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with refusal.shown(request, form):
            folder = dropfolder.folder_create(
                Actor.from_request(request),
                owner=request.user,
                name=data["name"],
                directory=data["directory"],
                key=data["encryption_key"],
                on_duplicate=data["on_duplicate"],
            )
            messages.success(request, f"Drop folder {folder.name} created; its imports act as you.")
            return redirect("drop_folders:detail", code=folder.code)
    context = {"form": form, "root": Path(settings.API_DROP_ROOT).absolute(), "nav_active": NAV}
    return render(request, "api/drop_folder_form.html", context, status=400 if form.errors else 200)


@require_GET
@permission_required("certificates.read")
def folder_detail(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    folder = access.get_for_user(request.user, FOLDERS.prefetch_related("scope_tags"), code=code)
    number = request.GET.get("page")
    page = CountAsFarAsShown(dropsets.sets_of(folder), PAGE_SIZE, number=number).get_page(number)
    context: dict[str, Any] = {
        "folder": folder,
        "page": page,
        "query": "",
        "running": any(s.batch is not None and s.batch.state == "running" for s in page.object_list),
        "path": dropfolder.folder_path(folder).absolute(),
        "owner_can_import": folder.owner.is_active and access.has_perm(folder.owner, "certificates.create"),
        "can": _can(request, folder),
        "nav_active": NAV,
    }
    template = "api/drop_folder.html"
    return render(request, f"{template}#sets" if request.htmx else template, context)


@require_http_methods(["GET", "POST"])
@permission_required("certificates.update")
def folder_edit(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    folder = access.get_for_user(request.user, FOLDERS, write="update", code=code)
    initial = {
        "name": folder.name,
        "encryption_key": folder.encryption_key,
        "on_duplicate": folder.on_duplicate,
    }
    form = DropFolderForm(request.POST or None, keys=usable_keys(request.user), editing=True, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with refusal.shown(request, form):
            dropfolder.folder_update(
                Actor.from_request(request),
                folder=folder,
                name=data["name"],
                key=data["encryption_key"],
                on_duplicate=data["on_duplicate"],
            )
            messages.success(request, "Drop folder saved.")
            return redirect("drop_folders:detail", code=folder.code)
    context = {"form": form, "folder": folder, "nav_active": NAV}
    return render(request, "api/drop_folder_form.html", context, status=400 if form.errors else 200)


@require_POST
@permission_required("certificates.update")
def folder_state(request: AuthenticatedHttpRequest, code: str, enabled: bool) -> HttpResponse:
    folder = access.get_for_user(request.user, FOLDERS, write="update", code=code)
    with refusal.shown(request):
        dropfolder.folder_set_enabled(Actor.from_request(request), folder=folder, enabled=enabled)
        state = "enabled: its sets are imported again" if enabled else "disabled: its sets wait on disk"
        messages.success(request, f"Drop folder {folder.name} {state}.")
    return redirect("drop_folders:detail", code=folder.code)


@require_http_methods(["GET", "POST"])
@permission_required("certificates.delete")
def folder_delete(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    folder = access.get_for_user(request.user, FOLDERS, write="delete", code=code)
    if request.method == "POST":
        with refusal.shown(request):
            dropfolder.folder_delete(Actor.from_request(request), folder=folder)
            messages.success(request, f"Drop folder {folder.name} deleted; its directory is left on disk.")
            return redirect("drop_folders:list")
    context = {"folder": folder, "path": dropfolder.folder_path(folder).absolute(), "nav_active": NAV}
    return render(request, "api/drop_folder_delete.html", context)


@require_POST
@permission_required("certificates.create")
def folder_scan(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    folder = access.get_for_user(request.user, FOLDERS, write="create", code=code)
    with refusal.shown(request):
        dropfolder.scan_request(Actor.from_request(request), folder=folder)
        messages.success(request, "Scan queued: new complete sets show here once a worker has read them.")
    return redirect("drop_folders:detail", code=folder.code)


@require_GET
@permission_required("certificates.read")
def set_results(request: AuthenticatedHttpRequest, code: str, set_id: int) -> HttpResponse:
    """The set's results, as the CSV written next to it (one row per file: state and problem, no password)."""
    folder = access.get_for_user(request.user, DropFolder.objects.all(), code=code)
    found = get_object_or_404(DropSet.objects.select_related("batch"), folder=folder, pk=set_id)
    response = HttpResponse(dropfolder.results_csv(found), content_type="text/csv; charset=utf-8")
    filename = re.sub(r"[^-\w.]", "_", found.name) + dropfolder.RESULTS_SUFFIX
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

"""Certificate imports: the single import with its live check, the bulk upload, and each import's progress,
cancel, retry and promotion of a dry run."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.core.paginator import Paginator
from django.db.models import Case, Count, When
from django.db.models.functions import Lower
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from certs import held, hooks, imports, lifecycle, manifest
from certs.forms import BulkImportForm, RetryForm, SingleImportForm
from certs.imports import Entry
from certs.models import GraphState, ImportBatch, ItemState, retryable_with_password
from certs.views import PAGE_SIZE
from certs.views.keys import usable_keys
from directory.models import DirectoryUser
from portal import access
from portal.access import permission_required
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest
from portal.lib import refusal
from portal.lib.refusal import Refused


def max_request_bytes() -> int:
    return settings.CERTS_MAX_UPLOAD_BYTES


def _tags(request: AuthenticatedHttpRequest) -> list[Any]:
    return access.creator_tags(request.user, "certificates")


# --- Single import ----------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
@permission_required("certificates.create")
def import_single(request: AuthenticatedHttpRequest) -> HttpResponse:
    keys = usable_keys(request)
    initial = {"upn": request.GET.get("upn", "")[:255]}
    kept = held.take(request.user.pk, request.POST.get("held", "")) if request.method == "POST" else None
    form = SingleImportForm(
        request.POST or None, request.FILES or None, keys=keys, initial=initial, held=kept
    )
    if request.method == "POST" and form.is_valid() and request.POST.get("action") == "import":
        data = form.cleaned_data
        entry = Entry(
            filename=data["filename"],
            data=data["file"],
            password=data["password"],
            upn=data["upn"],
            purpose=data["purpose"],
        )
        item = lifecycle.certificate_import(
            Actor.from_request(request),
            entry=entry,
            key=data["key"],
            tags=_tags(request),
            on_duplicate=data["on_duplicate"],
        )
        if kept is not None:
            held.release(kept.token)
        return redirect("certs:batch", code=item.batch.code)
    check = _check(form) if request.method == "POST" and form.is_valid() else None
    context = {
        "form": form,
        "check": check,
        "held": _hold(request, form, kept) if request.method == "POST" else None,
        "hold_minutes": held.HOLD_SECONDS // 60,
        "has_keys": keys.exists(),
        "nav_active": "certificates",
    }
    return render(request, "certs/import.html", context, status=400 if form.errors else 200)


def _hold(
    request: AuthenticatedHttpRequest, form: SingleImportForm, kept: held.Held | None
) -> held.Held | None:
    """Hold the file and password the page is shown again with (the page itself carries neither)."""
    current = form.file_and_password()
    if current is None:
        return kept
    filename, data, password = current
    if kept is not None and (kept.filename, kept.data, kept.password) == current:
        return kept
    if kept is not None:
        held.release(kept.token)
    return held.hold(request.user.pk, filename=filename, data=data, password=password)


def _check(form: SingleImportForm) -> lifecycle.Preview:
    data = form.cleaned_data
    entry = Entry(data["filename"], data["file"], data["password"], data["upn"], data["purpose"])
    return lifecycle.preview(entry, data["key"], user=form.directory_user, on_duplicate=data["on_duplicate"])


@never_cache
@require_POST
@permission_required("certificates.create")
def import_check(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The live check of the single import: what the engine finds, before anything is stored."""
    kept = held.take(request.user.pk, request.POST.get("held", ""))
    form = SingleImportForm(request.POST, request.FILES, keys=usable_keys(request), held=kept)
    check = _check(form) if form.is_valid() else None
    return render(request, "certs/import.html#check", {"form": form, "check": check})


@require_GET
@permission_required("certificates.create")
def user_options(request: AuthenticatedHttpRequest) -> HttpResponse:
    search = " ".join(request.GET.get("upn", "").split())[:200]
    users = DirectoryUser.objects.filter(removed_at__isnull=True).order_by(Lower("upn"))
    if search:
        users = users.filter(upn__icontains=search) | users.filter(display_name__icontains=search)
    return render(request, "certs/import.html#user_options", {"users": users[:20]})


# --- Bulk import ------------------------------------------------------------------------


class _KeepInMemory(MemoryFileUploadHandler):
    """Keep every uploaded file in memory, so a manifest's passwords never touch a temporary file.

    Safe because the request's size is capped before the body is read.
    """

    def handle_raw_input(self, *args: Any, **kwargs: Any) -> None:
        super().handle_raw_input(*args, **kwargs)
        self.activated = True


@never_cache
@csrf_exempt
@require_http_methods(["GET", "POST"])
@permission_required("certificates.create")
def import_bulk(request: AuthenticatedHttpRequest) -> HttpResponse:
    if int(request.META.get("CONTENT_LENGTH") or 0) > max_request_bytes():
        return _refused(request, "request_too_large", status=413)
    request.upload_handlers = [_KeepInMemory(request)]
    try:
        # Parsed here, before the CSRF check, so that too many files gets this page, not a bare 400.
        request.POST  # noqa: B018
    except (TooManyFilesSent, TooManyFieldsSent):
        return _refused(request, "too_many_files", status=400)
    response: HttpResponse = csrf_protect(_import_bulk)(request)
    return response


def _refused(request: AuthenticatedHttpRequest, code: str, *, status: int) -> HttpResponse:
    """An upload refused before it was read: nothing was stored, and the page says which limit."""
    context = {
        "code": code,
        "limit": max_request_bytes(),
        "max_files": settings.DATA_UPLOAD_MAX_NUMBER_FILES,
        "zip_max_files": manifest.max_files(),
        "nav_active": "certificates",
    }
    return render(request, "certs/upload_refused.html", context, status=status)


def _import_bulk(request: AuthenticatedHttpRequest) -> HttpResponse:
    keys = usable_keys(request)
    form = BulkImportForm(request.POST or None, request.FILES or None, keys=keys)
    errors: list[manifest.ManifestError] = []
    if request.method == "POST" and form.is_valid():
        try:
            entries = _bulk_entries(request, form.cleaned_data["manifest"])
        except manifest.Rejected as exc:
            errors = exc.errors
        else:
            batch = imports.batch_create(
                Actor.from_request(request),
                kind=ImportBatch.Kind.BULK,
                key=form.cleaned_data["key"],
                entries=entries,
                tags=_tags(request),
                dry_run=form.cleaned_data["dry_run"],
                on_duplicate=form.cleaned_data["on_duplicate"],
            )
            return redirect("certs:batch", code=batch.code)
    context = {
        "form": form,
        "errors": errors,
        "has_keys": keys.exists(),
        "keep_hours": imports.dry_run_keep_hours(),
        "nav_active": "certificates",
    }
    return render(request, "certs/bulk.html", context, status=400 if form.errors or errors else 200)


def _bulk_entries(request: AuthenticatedHttpRequest, form_manifest: Any) -> list[Entry]:
    uploads = request.FILES.getlist("pfx_files")
    if len(uploads) == 1 and (uploads[0].name or "").lower().endswith(".zip"):
        files = manifest.read_zip(uploads[0].read())
    elif uploads:
        files = manifest.read_files((u.name or "", u.read()) for u in uploads)
    else:
        raise manifest.Rejected([manifest.ManifestError("no_files", "Choose the PFX files or one ZIP file.")])
    rows = manifest.read_manifest(bytes(form_manifest.read()))
    return manifest.entries(rows, files)


@require_GET
@permission_required("certificates.create")
def manifest_template(request: AuthenticatedHttpRequest) -> HttpResponse:
    response = HttpResponse(manifest.TEMPLATE, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="pfx-import-manifest.csv"'
    return response


# --- Batches ----------------------------------------------------------------------------


@require_GET
@permission_required("certificates.read")
def batches(request: AuthenticatedHttpRequest) -> HttpResponse:
    rows = access.scoped(ImportBatch.objects.select_related("encryption_key"), request.user)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "certs/batches.html", {"page": page, "query": "", "nav_active": "certificates"})


def progress(batch: ImportBatch) -> dict[str, Any]:
    counts = imports.batch_counts(batch)
    total = batch.total or 1
    finished = sum(counts[s] for s in ("stored", "failed", "skipped", "cancelled"))
    if batch.dry_run:
        finished += counts["validated"]
    # A claimed chunk goes from queued to its final state in one write; until then it is in progress.
    in_progress = batch.items.filter(done=False, claim__isnull=False).count() if counts["queued"] else 0
    end = batch.finished_at or timezone.now()
    elapsed = max((end - batch.created_at).total_seconds(), 0.001)
    rate = finished / elapsed
    left = (batch.total - finished) / rate if rate and batch.state == ImportBatch.State.RUNNING else None
    intune = dict(
        batch.certificates.values_list("graph_state").annotate(n=Count("pk")).values_list("graph_state", "n")
    )
    return {
        "counts": counts,
        "waiting": counts["queued"] - in_progress,
        "in_progress": in_progress,
        "finished": finished,
        "percent": min(100, round(100 * finished / total)),
        "rate": rate,
        "seconds_left": round(left) if left is not None else None,
        "running": batch.state == ImportBatch.State.RUNNING,
        "intune": [(state, label, intune.get(state, 0)) for state, label in GraphState.choices]
        if intune
        else [],
        "uploading": bool(intune.get(GraphState.PENDING)),
    }


@never_cache
@require_GET
def batch(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    """An import's progress and rows. It takes passwords (retries), so it is never cached."""
    batch = access.get_for_user(
        request.user, ImportBatch.objects.select_related("encryption_key", "promoted_from"), code=code
    )
    state = request.GET.get("state", "")
    items = (
        batch.items.defer("pfx", "staged_password")
        .select_related("certificate")
        .annotate(retry=Case(When(retryable_with_password(), then=True), default=False))
    )
    if state in ItemState.values:
        items = items.filter(state=state)
    can_write = access.can(request.user, "certificates.create", batch)
    deadline = imports.promotion_deadline(batch)
    promotion = ImportBatch.objects.filter(promoted_from=batch).first() if batch.dry_run else None
    context = {
        "batch": batch,
        "progress": progress(batch),
        "page": Paginator(items, PAGE_SIZE).get_page(request.GET.get("page")),
        "query": f"state={state}" if state else "",
        "state_filter": state,
        "can_write": can_write,
        "can_retry": can_write and batch.items.filter(retryable_with_password()).exists(),
        "promotion": promotion,
        "promote_until": deadline if deadline and deadline > timezone.now() and promotion is None else None,
        "connected": hooks.delivery_connected(),
        "can_connect": access.has_perm(request.user, "connectors.update"),
        "nav_active": "certificates",
    }
    template = "certs/batch.html"
    return render(request, f"{template}#progress" if request.htmx else template, context)


@require_POST
def batch_cancel(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    batch = access.get_for_user(request.user, ImportBatch.objects.all(), write="create", code=code)
    with refusal.shown(request):
        count = imports.batch_cancel(Actor.from_request(request), batch=batch)
        messages.success(request, f"Import cancelled; {count} rows were not processed.")
    return redirect("certs:batch", code=batch.code)


@require_POST
def batch_retry(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    batch = access.get_for_user(request.user, ImportBatch.objects.all(), write="create", code=code)
    # Only rows a password can fix take one: the others need a new file, not a retry.
    retryable = list(batch.items.filter(retryable_with_password()).values_list("pk", flat=True))
    form = RetryForm(request.POST, item_ids=retryable)
    with refusal.shown(request):
        if not form.is_valid():
            raise Refused("bad_form", "The form could not be read.")
        count = imports.items_retry(Actor.from_request(request), batch=batch, passwords=form.passwords())
        messages.success(request, f"{count} rows queued again.")
    return redirect("certs:batch", code=batch.code)


@require_POST
def batch_promote(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    """Import a finished dry run's files for real, with the passwords it kept: no second upload."""
    batch = access.get_for_user(request.user, ImportBatch.objects.all(), write="create", code=code)
    if not usable_keys(request).filter(pk=batch.encryption_key_id).exists():
        messages.error(request, "You cannot use this import's encryption key (code key_not_visible).")
        return redirect("certs:batch", code=batch.code)
    with refusal.shown(request):
        real = imports.batch_promote(Actor.from_request(request), batch=batch)
        messages.success(request, f"Importing the {real.total} files of the dry run.")
        return redirect("certs:batch", code=real.code)
    return redirect("certs:batch", code=batch.code)

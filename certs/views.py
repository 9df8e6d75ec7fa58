"""Certificate pages: encryption keys, single and bulk import, batch progress, the list and deletes."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, Exists, OuterRef, QuerySet, When
from django.db.models.functions import Lower
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from certs import held, manifest, services
from certs.forms import (
    BulkImportForm,
    CertificateFilterForm,
    CleanupForm,
    KeyForm,
    RetryForm,
    SelectCertificatesForm,
    SingleImportForm,
)
from certs.models import (
    Certificate,
    EncryptionKey,
    GraphState,
    ImportBatch,
    ItemState,
    retryable_with_password,
)
from directory.models import DirectoryUser
from graph.models import TenantConnection
from portal import access
from portal.access import permission_required
from portal.audit import Actor
from portal.http import AuthenticatedHttpRequest
from portal.lib.listing import filter_state
from portal.lib.spreadsheet import csv_download

PAGE_SIZE = 50


def max_request_bytes() -> int:
    return settings.CERTS_MAX_UPLOAD_BYTES


def _keys(request: AuthenticatedHttpRequest) -> QuerySet[EncryptionKey]:
    # Importing with a key is using it: the admin must be able to read it.
    return access.scoped(EncryptionKey.objects.all(), request.user, "read")


def _tags(request: AuthenticatedHttpRequest) -> list[Any]:
    return access.creator_tags(request.user, "certificates")


# --- Encryption keys --------------------------------------------------------------------


@require_GET
@permission_required("connectors.read")
def keys(request: AuthenticatedHttpRequest) -> HttpResponse:
    rows = _keys(request)
    context = {
        "keys": rows,
        "can_add": access.has_perm(request.user, "connectors.create"),
        "can_update": access.has_perm(request.user, "connectors.update"),
        "nav_active": "tenant",
    }
    return render(request, "certs/keys.html", context)


@require_http_methods(["GET", "POST"])
@permission_required("connectors.create")
def key_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    tags = access.creator_tags(request.user, "connectors")
    form = KeyForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            data = dict(form.cleaned_data)
            key = services.key_add(Actor.from_request(request), tags=tags, data=data.pop("key_file"), **data)
        except services.ServiceError as exc:
            form.add_error("key_file", f"{exc.message} (code {exc.code})")
        else:
            messages.success(request, f"Encryption key {key} added.")
            return redirect("certs:keys")
    status = 400 if form.errors else 200
    return render(request, "certs/key_add.html", {"form": form, "nav_active": "tenant"}, status=status)


@require_POST
def key_default(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    key = access.get_for_user(request.user, EncryptionKey.objects.all(), write="update", code=code)
    services.key_set_default(Actor.from_request(request), key=key)
    messages.success(request, f"{key} is now the default key for imports.")
    return redirect("certs:keys")


# --- Single import ----------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
@permission_required("certificates.create")
def import_single(request: AuthenticatedHttpRequest) -> HttpResponse:
    keys = _keys(request)
    initial = {"upn": request.GET.get("upn", "")[:255]}
    kept = held.take(request.user.pk, request.POST.get("held", "")) if request.method == "POST" else None
    form = SingleImportForm(
        request.POST or None, request.FILES or None, keys=keys, initial=initial, held=kept
    )
    if request.method == "POST" and form.is_valid() and request.POST.get("action") == "import":
        data = form.cleaned_data
        entry = services.Entry(
            filename=data["filename"],
            data=data["file"],
            password=data["password"],
            upn=data["upn"],
            purpose=data["purpose"],
        )
        item = services.certificate_import(
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


def _check(form: SingleImportForm) -> services.Preview:
    data = form.cleaned_data
    entry = services.Entry(data["filename"], data["file"], data["password"], data["upn"], data["purpose"])
    return services.preview(entry, data["key"], user=form.directory_user, on_duplicate=data["on_duplicate"])


@never_cache
@require_POST
@permission_required("certificates.create")
def import_check(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The live check of the single import: what the engine finds, before anything is stored."""
    kept = held.take(request.user.pk, request.POST.get("held", ""))
    form = SingleImportForm(request.POST, request.FILES, keys=_keys(request), held=kept)
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
    keys = _keys(request)
    form = BulkImportForm(request.POST or None, request.FILES or None, keys=keys)
    errors: list[manifest.ManifestError] = []
    if request.method == "POST" and form.is_valid():
        try:
            entries = _bulk_entries(request, form.cleaned_data["manifest"])
        except manifest.Refused as exc:
            errors = exc.errors
        else:
            batch = services.batch_create(
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
        "keep_hours": services.dry_run_keep_hours(),
        "nav_active": "certificates",
    }
    return render(request, "certs/bulk.html", context, status=400 if form.errors or errors else 200)


def _bulk_entries(request: AuthenticatedHttpRequest, form_manifest: Any) -> list[services.Entry]:
    uploads = request.FILES.getlist("pfx_files")
    if len(uploads) == 1 and (uploads[0].name or "").lower().endswith(".zip"):
        files = manifest.read_zip(uploads[0].read())
    elif uploads:
        files = manifest.read_files((u.name or "", u.read()) for u in uploads)
    else:
        raise manifest.Refused([manifest.ManifestError("no_files", "Choose the PFX files or one ZIP file.")])
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
    counts = services.batch_counts(batch)
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
    deadline = services.promotion_deadline(batch)
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
        "connected": TenantConnection.current() is not None,
        "can_connect": access.has_perm(request.user, "connectors.update"),
        "nav_active": "certificates",
    }
    template = "certs/batch.html"
    return render(request, f"{template}#progress" if request.htmx else template, context)


@require_POST
def batch_cancel(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    batch = access.get_for_user(request.user, ImportBatch.objects.all(), write="create", code=code)
    try:
        count = services.batch_cancel(Actor.from_request(request), batch=batch)
        messages.success(request, f"Import cancelled; {count} rows were not processed.")
    except services.ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("certs:batch", code=batch.code)


@require_POST
def batch_retry(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    batch = access.get_for_user(request.user, ImportBatch.objects.all(), write="create", code=code)
    # Only rows a password can fix take one: the others need a new file, not a retry.
    retryable = list(batch.items.filter(retryable_with_password()).values_list("pk", flat=True))
    form = RetryForm(request.POST, item_ids=retryable)
    try:
        if not form.is_valid():
            raise services.ServiceError("bad_form", "The form could not be read.")
        count = services.items_retry(Actor.from_request(request), batch=batch, passwords=form.passwords())
        messages.success(request, f"{count} rows queued again.")
    except services.ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("certs:batch", code=batch.code)


@require_POST
def batch_promote(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    """Import a finished dry run's files for real, with the passwords it kept: no second upload."""
    batch = access.get_for_user(request.user, ImportBatch.objects.all(), write="create", code=code)
    if not _keys(request).filter(pk=batch.encryption_key_id).exists():
        messages.error(request, "You cannot use this import's encryption key (code key_not_visible).")
        return redirect("certs:batch", code=batch.code)
    try:
        real = services.batch_promote(Actor.from_request(request), batch=batch)
    except services.ServiceError as exc:
        messages.error(request, f"{exc.message} (code {exc.code})")
        return redirect("certs:batch", code=batch.code)
    messages.success(request, f"Importing the {real.total} files of the dry run.")
    return redirect("certs:batch", code=real.code)


# --- Certificates -----------------------------------------------------------------------


@require_GET
@permission_required("certificates.read")
def certificate_list(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    visible = access.scoped(
        Certificate.objects.select_related("user", "encryption_key", "batch"), request.user
    )
    form = CertificateFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "certs/list.html", {"form": form, "nav_active": "certificates"}, status=400)
    rows = form.apply(visible.defer("pfx_blob", "encrypted_password"))
    if request.GET.get("format") == "csv":
        return _csv_export(rows)
    query = request.GET.copy()
    query.pop("page", None)
    number = request.GET.get("page")
    # Rows that tie on the chosen ordering keep one order, so no page repeats or skips them.
    rows = rows.order_by(*rows.query.order_by, "pk")
    paginator = _CountAsFarAsShown(_link_batches(rows, request), PAGE_SIZE, number=number)
    context = {
        "form": form,
        "page": paginator.get_page(number),
        "query": query.urlencode(),
        "sorts": _sort_links(request, form),
        "can_import": access.has_perm(request.user, "certificates.create"),
        "can_delete": access.has_perm(request.user, "certificates.delete"),
        "reads_all": access.reads_all(request.user, Certificate),
        **filter_state(form),
        "nav_active": "certificates",
    }
    return render(request, "certs/list.html#results" if request.htmx else "certs/list.html", context)


# The certificate list counts at most this many rows (or as far as the page asked for).
COUNT_AT_LEAST = 1000


if TYPE_CHECKING:
    _CertificatePaginator = Paginator[Certificate]
else:  # Paginator is generic only in the type stubs.
    _CertificatePaginator = Paginator


class _CountAsFarAsShown(_CertificatePaginator):
    """Pages through a large table without counting all of it, nor joining the rows it skips.

    A page among the first ``COUNT_AT_LEAST`` rows is read first, with one row more: when
    that row is missing, the page is the last one and the count is known without counting.
    Otherwise rows are counted up to the end of the page asked for, and at least
    ``COUNT_AT_LEAST``; beyond that the page says "more than" (``counted_all`` is False) and
    still offers the next page. A page's rows are picked by primary key along the ordering's
    index, then read with their related rows, so a deep page does not read every row before
    it in full.
    """

    def __init__(self, object_list: QuerySet[Certificate], per_page: int, *, number: str | None) -> None:
        super().__init__(object_list, per_page)
        self.rows = object_list
        try:
            self.wanted = max(1, int(number or 1))
        except ValueError:
            self.wanted = 1
        self.limit = max(COUNT_AT_LEAST, self.wanted * per_page) + 1

    def _rows(self, number: int, extra: int = 0) -> list[Certificate]:
        bottom = (number - 1) * self.per_page
        chosen = self.rows.values("pk")[bottom : bottom + self.per_page + extra]
        return list(self.rows.filter(pk__in=chosen))

    @cached_property
    def _wanted_rows(self) -> list[Certificate]:
        return self._rows(self.wanted, extra=1)

    @cached_property
    def count(self) -> int:
        # A deep page may lie past the end: count first rather than skip rows for nothing.
        if self.wanted * self.per_page <= COUNT_AT_LEAST:
            found = len(self._wanted_rows)
            if found <= self.per_page and (found or self.wanted == 1):
                return (self.wanted - 1) * self.per_page + found
        return self.rows.order_by().values("pk")[: self.limit].count()

    @property
    def counted_all(self) -> bool:
        return self.count < self.limit

    @property
    def at_least(self) -> int:
        return self.limit - 1

    def page(self, number: int | str) -> Page[Certificate]:
        number = self.validate_number(number)
        rows = self._wanted_rows[: self.per_page] if number == self.wanted else self._rows(number)
        return Page(rows, number, self)


def _link_batches(rows: QuerySet[Certificate], request: AuthenticatedHttpRequest) -> QuerySet[Certificate]:
    """Mark the rows whose import the admin may open, so the list links only to pages they can see."""
    batch = access.scoped(ImportBatch.objects.filter(pk=OuterRef("batch_id")), request.user)
    return rows.annotate(batch_readable=Exists(batch))


def _sort_links(request: AuthenticatedHttpRequest, form: CertificateFilterForm) -> dict[str, dict[str, str]]:
    links = {}
    for key in form.SORTS:
        query = request.GET.copy()
        query.pop("page", None)
        query["sort"] = f"-{key}" if form.current_sort == key else key
        state = {key: "ascending", f"-{key}": "descending"}.get(form.current_sort, "none")
        links[key] = {"url": f"?{query.urlencode()}", "state": state}
    return links


def _csv_export(rows: QuerySet[Certificate]) -> StreamingHttpResponse:
    header = [
        "upn",
        "thumbprint",
        "purpose",
        "subject",
        "issuer",
        "serial",
        "not_before",
        "not_after",
        "key",
        "graph_state",
        "batch",
    ]
    values = (
        [
            c.upn,
            c.thumbprint,
            c.purpose,
            c.subject,
            c.issuer,
            c.serial,
            c.not_before.isoformat(),
            c.not_after.isoformat(),
            c.key_label,
            c.graph_state,
            c.batch.code if c.batch else "",
        ]
        for c in rows.iterator(chunk_size=500)
    )
    return csv_download("certificates.csv", header, values)


@require_GET
def certificate_detail(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    cert = access.get_for_user(
        request.user, Certificate.objects.select_related("user", "encryption_key", "batch"), code=code
    )
    batch = cert.batch
    context = {
        "cert": cert,
        "can_open_batch": batch is not None and access.can(request.user, "certificates.read", batch),
        "can_delete": access.can(request.user, "certificates.delete", cert),
        "nav_active": "certificates",
    }
    return render(request, "certs/detail.html", context)


@require_http_methods(["GET", "POST"])
def certificate_delete(request: AuthenticatedHttpRequest, code: str) -> HttpResponse:
    cert = access.get_for_user(
        request.user, Certificate.objects.select_related("user"), write="delete", code=code
    )
    if request.method == "POST" and request.POST.get("confirm") == cert.thumbprint:
        user = cert.user
        services.certificate_delete(Actor.from_request(request), certificate=cert)
        messages.success(request, f"Certificate {cert.thumbprint} of {cert.upn} deleted.")
        return redirect("directory:user", user.object_id)
    status = 400 if request.method == "POST" else 200
    return render(request, "certs/delete.html", {"cert": cert, "nav_active": "certificates"}, status=status)


@require_http_methods(["GET", "POST"])
@permission_required("certificates.delete")
def remove_expired(request: AuthenticatedHttpRequest, object_id: str) -> HttpResponse:
    expired = access.scoped(Certificate.objects.filter(not_after__lte=timezone.now()), request.user, "delete")
    expired = expired.filter(user__object_id=object_id).defer("pfx_blob", "encrypted_password")
    form = SelectCertificatesForm(request.POST or None, choices=[(c.pk, str(c)) for c in expired])
    if request.method == "POST" and form.is_valid() and form.cleaned_data["confirm"]:
        chosen = expired.filter(pk__in=form.cleaned_data["certificates"])
        count = services.remove_expired(Actor.from_request(request), certificates=chosen)
        messages.success(request, f"{count} expired certificates removed.")
        return redirect("directory:user", object_id)
    user = DirectoryUser.objects.filter(object_id=object_id).first()
    context = {"expired": expired, "form": form, "directory_user": user, "nav_active": "users"}
    return render(
        request, "certs/remove_expired.html", context, status=400 if request.method == "POST" else 200
    )


@require_http_methods(["GET", "POST"])
@permission_required("certificates.delete")
def cleanup(request: AuthenticatedHttpRequest) -> HttpResponse:
    removable = access.scoped(Certificate.objects.all(), request.user, "delete").defer(
        "pfx_blob", "encrypted_password"
    )
    form = CleanupForm(request.POST if request.method == "POST" else (request.GET or CleanupForm.DEFAULTS))
    chosen = form.select(removable) if form.is_valid() else removable.none()
    count = chosen.count()
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["confirm"] and form.cleaned_data["expected"] == count and count:
            removed = services.remove_expired(Actor.from_request(request), certificates=chosen)
            messages.success(
                request, f"{removed} expired certificates removed from the portal and from Intune."
            )
            return redirect("certs:list")
        form.add_error(
            None,
            "Tick the confirmation."
            if count == form.cleaned_data["expected"]
            else "The list changed: check it again.",
        )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "count": count,
        "page": Paginator(chosen.select_related("user"), PAGE_SIZE).get_page(request.GET.get("page")),
        "query": query.urlencode(),
        "nav_active": "certificates",
    }
    template = "certs/cleanup.html#results" if request.htmx else "certs/cleanup.html"
    return render(request, template, context, status=400 if form.errors else 200)


def user_panel(request: AuthenticatedHttpRequest, user: DirectoryUser) -> dict[str, Any] | None:
    """The Certificates section of a user's page (hidden from admins who may not read certificates)."""
    if not access.has_perm(request.user, "certificates.read"):
        return None
    certificates = access.scoped(Certificate.objects.filter(user=user), request.user).select_related(
        "batch", "encryption_key"
    )
    expired = Certificate.objects.filter(user=user, not_after__lte=timezone.now())
    return {
        "certificates": _link_batches(
            certificates.defer("pfx_blob", "encrypted_password").order_by("-not_after"), request
        ),
        # Offered only when some of them are the admin's to delete.
        "can_remove_expired": access.scoped(expired, request.user, "delete").exists(),
        "can_import": access.has_perm(request.user, "certificates.create"),
    }

"""Unattended imports: drop folders, watched by a beat task, and the API's push of the same sets.

A drop folder is the directory ``API_DROP_ROOT/<directory>`` of a ``DropFolder`` (an import profile:
encryption key, what to do with duplicates, and the admin whose roles and tags the imports act with).
A CA's export job writes one *set* per run as a sub-directory::

    API_DROP_ROOT/<directory>/<set>/manifest.csv   filename,upn,password,purpose
    API_DROP_ROOT/<directory>/<set>/*.pfx          or one .zip holding them
    API_DROP_ROOT/<directory>/<set>/READY          written last: the set is complete

Each complete set is imported exactly once: its ``DropSet`` row (unique per folder and set name) is
inserted in the same transaction that creates the import, so two beat ticks or two workers that see
the set at once create one import; the other's insert fails and it moves on. The manifest (it holds
the passwords) is overwritten and deleted once read, also when the set is refused, and on a later scan
if the process died in between. When the import has finished, ``<set>.results.csv`` is written next
to the set (one row per file with its state and problem code) and failures are mailed.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from api.models import DropFolder, DropSet
from api.tokens import CATEGORY
from certs import imports, manifest
from certs.models import EncryptionKey, ImportBatch
from portal import access, audit
from portal.audit import Actor
from portal.lib import refusal
from portal.lib.refusal import Refused
from portal.models import AuditEvent, User

logger = logging.getLogger(__name__)

MARKER = "READY"
MANIFEST = "manifest.csv"
RESULTS_SUFFIX = ".results.csv"
PFX_SUFFIXES = (".pfx", ".p12")


def folder_path(folder: DropFolder) -> Path:
    return Path(settings.API_DROP_ROOT) / folder.directory


def actor_for(folder: DropFolder) -> Actor:
    return Actor(user=folder.owner, name=f"{folder.owner.email} (drop folder {folder.name})")


@dataclass(frozen=True)
class Pushed:
    """A set to import: the manifest's bytes and the files (loose PFX files or one ZIP)."""

    name: str
    manifest: bytes
    uploads: list[tuple[str, bytes]]


def _entries(pushed: Pushed) -> list[imports.Entry]:
    uploads = pushed.uploads
    if len(uploads) == 1 and uploads[0][0].lower().endswith(".zip"):
        files = manifest.read_zip(uploads[0][1])
    elif uploads:
        files = manifest.read_files(uploads)
    else:
        raise manifest.Rejected(
            [manifest.ManifestError("no_files", "The set holds no PFX files and no ZIP.")]
        )
    return manifest.entries(manifest.read_manifest(pushed.manifest), files)


def import_set(folder: DropFolder, pushed: Pushed, *, actor: Actor | None = None) -> DropSet:
    """Import ``pushed`` once: a set already seen under this name is refused with ``already_imported``."""
    actor = actor or actor_for(folder)
    owner = actor.user
    if owner is None or not owner.is_active or not access.has_perm(owner, "certificates.create"):
        raise Refused("forbidden", "The drop folder's admin may no longer import certificates.", status=403)
    key = access.scoped(EncryptionKey.objects.filter(pk=folder.encryption_key_id), owner)
    try:
        with transaction.atomic():
            found = DropSet.objects.create(folder=folder, name=pushed.name[:255])
            try:
                entries = _entries(pushed)
            except manifest.Rejected as exc:
                found.state = DropSet.State.REFUSED
                found.problem_code = exc.errors[0].code if exc.errors else "rejected"
                found.problem_message = "; ".join(
                    f"{'line ' + str(e.line) + ': ' if e.line else ''}{e.message}" for e in exc.errors
                )[:1000]
                found.save(update_fields=["state", "problem_code", "problem_message"])
                return found
            if not key.exists():
                raise Refused("no_key", "The drop folder's encryption key is not one its admin may use.")
            found.batch = imports.batch_create(
                actor,
                kind=ImportBatch.Kind.COMMAND,
                key=folder.encryption_key,
                entries=entries,
                tags=access.creator_tags(owner, "certificates"),
                on_duplicate=folder.on_duplicate,
            )
            found.save(update_fields=["batch"])
    except IntegrityError as exc:
        raise Refused(
            "already_imported", f"The set {pushed.name} has already been imported.", status=409
        ) from exc
    return found


def _destroy(path: Path) -> None:
    """Overwrite a file holding passwords before deleting it (no plaintext left in the file's blocks)."""
    try:
        size = path.stat().st_size
        with path.open("r+b") as out:
            out.write(b"\0" * size)
            out.flush()
            os.fsync(out.fileno())
        path.unlink()
    except FileNotFoundError:
        pass


def _read_set(directory: Path) -> Pushed:
    uploads: list[tuple[str, bytes]] = []
    zips = sorted(p for p in directory.iterdir() if p.suffix.lower() == ".zip")
    if zips:
        uploads = [(zips[0].name, zips[0].read_bytes())]
    else:
        paths = [p for p in sorted(directory.rglob("*")) if p.is_file() and p.suffix.lower() in PFX_SUFFIXES]
        if len(paths) > manifest.max_files():
            raise manifest.Rejected([manifest.ManifestError("too_many_files", "Too many files in the set.")])
        uploads = [(p.relative_to(directory).as_posix(), p.read_bytes()) for p in paths]
    return Pushed(directory.name, (directory / MANIFEST).read_bytes(), uploads)


def scan_folder(folder: DropFolder) -> list[DropSet]:
    """Import every complete set of ``folder`` not imported yet; safe to run on any number of workers at once."""
    root = folder_path(folder)
    if not root.is_dir():
        _scanned(folder, f"The directory {root} does not exist on the worker that scanned it.")
        return []
    _scanned(folder, "")
    seen = set(DropSet.objects.filter(folder=folder).values_list("name", flat=True))
    started = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        if not (directory / MARKER).exists():
            continue
        if directory.name in seen:
            _destroy(directory / MANIFEST)  # left by a process that died after importing
            continue
        try:
            pushed = _read_set(directory)
        except FileNotFoundError:
            continue  # another worker destroyed the manifest after importing the set
        except manifest.Rejected as exc:
            first = (
                exc.errors[0] if exc.errors else manifest.ManifestError("rejected", "The set was refused.")
            )
            started.append(_refused_set(folder, directory.name, Refused(first.code, first.message)))
            _destroy(directory / MANIFEST)
            continue
        try:
            result = import_set(folder, pushed)
        except Refused as exc:
            if exc.code == "already_imported":
                _destroy(directory / MANIFEST)
                continue
            result = _refused_set(folder, directory.name, exc)
        _destroy(directory / MANIFEST)
        started.append(result)
    return started


def _scanned(folder: DropFolder, problem: str) -> None:
    DropFolder.objects.filter(pk=folder.pk).update(scanned_at=timezone.now(), scan_problem=problem[:500])


def _refused_set(folder: DropFolder, name: str, exc: Refused) -> DropSet:
    try:
        with transaction.atomic():
            return DropSet.objects.create(
                folder=folder,
                name=name,
                state=DropSet.State.REFUSED,
                problem_code=exc.code,
                problem_message=exc.message,
            )
    except IntegrityError:
        return DropSet.objects.get(folder=folder, name=name)


def results_csv(found: DropSet) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["filename", "upn", "purpose", "state", "problem_code", "problem_message", "thumbprint"])
    if found.batch is None:
        writer.writerow(["", "", "", "refused", found.problem_code, found.problem_message, ""])
    else:
        rows = found.batch.items.order_by("position").values_list(
            "filename", "upn", "purpose", "state", "problem_code", "problem_message", "thumbprint"
        )
        writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def report_finished(folder: DropFolder) -> int:
    """Write the results of every finished set next to it, once, and mail its failures."""
    pending = DropSet.objects.filter(folder=folder, reported_at__isnull=True).exclude(
        batch__state=ImportBatch.State.RUNNING
    )
    reported = 0
    for found in pending.select_related("batch"):
        if not DropSet.objects.filter(pk=found.pk, reported_at__isnull=True).update(
            reported_at=timezone.now()
        ):
            continue  # another worker reports it
        target = folder_path(folder) / f"{found.name}{RESULTS_SUFFIX}"
        temporary = target.with_suffix(".tmp")
        temporary.write_bytes(results_csv(found))
        temporary.replace(target)
        failed = _failures(found)
        DropSet.objects.filter(pk=found.pk).update(
            state=DropSet.State.REFUSED if found.batch is None else DropSet.State.DONE
        )
        if failed:
            _alert(folder, found, failed)
        reported += 1
    return reported


def _failures(found: DropSet) -> int:
    if found.batch is None:
        return 1
    return found.batch.items.exclude(state__in=["stored", "skipped"]).count()


def _alert(folder: DropFolder, found: DropSet, failed: int) -> None:
    recipients = list(settings.API_DROP_ALERT_EMAILS) or [folder.owner.email]
    subject = f"Drop folder {folder.name}: {failed} problem{'s' if failed != 1 else ''} in set {found.name}"
    body = (
        f"The set {found.name} of drop folder {folder.name} was imported with {failed} rows failed or refused"
        f"{': ' + found.problem_code if found.problem_code else ''}.\n\n"
        f"Results: {folder_path(folder) / (found.name + RESULTS_SUFFIX)}\n"
    )
    try:
        send_mail(settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + subject, body, None, recipients)
    except Exception:  # a mail server down must not stop the other folders' results
        logger.exception("drop folder alert for %s not sent", found)


def scan_all() -> int:
    count = 0
    for folder in DropFolder.objects.filter(enabled=True).select_related("owner", "encryption_key"):
        count += len(scan_folder(folder))
        report_finished(folder)
    return count


def scan_one(folder_id: int) -> int:
    """What "Scan now" runs on a worker: the folder's new sets, then the results of its finished ones."""
    folder = (
        DropFolder.objects.filter(pk=folder_id, enabled=True)
        .select_related("owner", "encryption_key")
        .first()
    )
    if folder is None:
        return 0  # deleted or disabled since the scan was asked for
    count = len(scan_folder(folder))
    report_finished(folder)
    return count


# --- Managing folders (the pages and the API) -------------------------------------------------

AUDITED = ["name", "directory", "encryption_key", "on_duplicate", "enabled"]
_DIRECTORY = re.compile(r"[-a-zA-Z0-9_]{1,100}")


def _check(folder: DropFolder) -> None:
    """Refuse a folder the workers could not watch, or whose imports could not use its key."""
    if not _DIRECTORY.fullmatch(folder.directory):
        raise Refused(
            "bad_directory",
            "Name the directory with letters, digits, hyphens and underscores only (no slashes, dots or "
            "spaces), at most 100 characters, e.g. nightly-ca: it is made under API_DROP_ROOT.",
            field="directory",
        )
    others = DropFolder.objects.exclude(pk=folder.pk)
    if others.filter(directory=folder.directory).exists():
        raise Refused(
            "directory_taken",
            f"Another drop folder watches the directory {folder.directory}.",
            field="directory",
        )
    if others.filter(name=" ".join(folder.name.split())).exists():
        raise Refused("name_taken", f"Another drop folder is named {folder.name}.", field="name")
    if not access.scoped(EncryptionKey.objects.filter(pk=folder.encryption_key_id), folder.owner).exists():
        raise Refused(
            "no_key",
            f"The folder's imports act as {folder.owner.email}, who may not use this encryption key.",
            field="encryption_key",
        )
    refusal.full_clean(folder)


def _record(
    actor: Actor, folder: DropFolder, activity: str, operation: str, before: dict[str, object]
) -> None:
    after = audit.snapshot(folder, AUDITED) if operation != AuditEvent.Operation.DELETE else {}
    audit.record(
        actor,
        activity=activity,
        category=CATEGORY,
        operation=operation,
        resources=[audit.resource(folder, type="Drop folder", changes=audit.changes(before, after))],
    )


@transaction.atomic
def folder_create(
    actor: Actor, *, owner: User, name: str, directory: str, key: EncryptionKey, on_duplicate: str
) -> DropFolder:
    """A new drop folder acting for ``owner``; its directory is made under ``API_DROP_ROOT``."""
    folder = DropFolder(
        name=" ".join(name.split()),
        directory=directory,
        encryption_key=key,
        on_duplicate=on_duplicate,
        owner=owner,
    )
    _check(folder)
    folder.save()
    folder.scope_tags.set(access.creator_tags(owner, "certificates"))
    _record(actor, folder, "Create import drop folder", AuditEvent.Operation.CREATE, {})
    transaction.on_commit(lambda: folder_path(folder).mkdir(parents=True, exist_ok=True))
    return folder


@transaction.atomic
def folder_update(
    actor: Actor, *, folder: DropFolder, name: str, key: EncryptionKey, on_duplicate: str
) -> DropFolder:
    """Rename a folder, or change its key or duplicate rule; its directory and acting admin stay."""
    folder = DropFolder.objects.select_for_update(of=("self",)).select_related("owner").get(pk=folder.pk)
    before = audit.snapshot(folder, AUDITED)
    folder.name = " ".join(name.split())
    folder.encryption_key = key
    folder.on_duplicate = on_duplicate
    _check(folder)
    folder.save(update_fields=["name", "encryption_key", "on_duplicate"])
    _record(actor, folder, "Update import drop folder", AuditEvent.Operation.UPDATE, before)
    return folder


@transaction.atomic
def folder_set_enabled(actor: Actor, *, folder: DropFolder, enabled: bool) -> DropFolder:
    """A disabled folder is not scanned (its sets wait on disk) until it is enabled again."""
    folder = DropFolder.objects.select_for_update().get(pk=folder.pk)
    if folder.enabled == enabled:
        return folder
    before = audit.snapshot(folder, AUDITED)
    folder.enabled = enabled
    folder.save(update_fields=["enabled"])
    activity = "Enable import drop folder" if enabled else "Disable import drop folder"
    _record(actor, folder, activity, AuditEvent.Operation.UPDATE, before)
    return folder


@transaction.atomic
def folder_delete(actor: Actor, *, folder: DropFolder) -> None:
    """Forget the folder and its sets; the directory and its files stay on disk, the imports stay."""
    _record(actor, folder, "Delete import drop folder", AuditEvent.Operation.DELETE, {})
    folder.delete()


@transaction.atomic
def scan_request(actor: Actor, *, folder: DropFolder) -> None:
    """Scan the folder now, on a worker, once this transaction commits (beat does so every minute).

    Scanning twice imports nothing twice: each set's ``DropSet`` row is unique.
    """
    if not DropFolder.objects.filter(pk=folder.pk, enabled=True).exists():
        raise Refused("folder_disabled", "The drop folder is disabled: enable it to scan it.", status=409)
    _record(actor, folder, "Scan import drop folder", AuditEvent.Operation.ACTION, {})
    from api.tasks import scan_drop_folder

    transaction.on_commit(partial(scan_drop_folder.delay, folder.pk))

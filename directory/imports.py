"""CSV imports into the tenant directory: reading the file, the report, and the import of users
(group memberships: :mod:`directory.memberships`).

Both imports check every row first and change nothing unless every row is valid,
so a file is applied whole or not at all. Rows are matched to existing objects
(users by object id, then UPN; groups by object id, then name), so importing the
same file twice changes nothing the second time.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from directory.models import DirectoryUser, UserSource
from portal import audit
from portal.audit import Actor
from portal.lib.csvfile import CsvFile, CsvRefused, normalise_header
from portal.models import AuditEvent

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000
MAX_REPORTED_ERRORS = 200
CATEGORY = "Directory"
_LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class RowError:
    """One problem in the file. ``row`` counts the header as row 1; ``None`` is about the whole file."""

    row: int | None
    code: str
    message: str


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    groups_created: int = 0
    # Users in the file that Entra ID has not listed (created here, or imported before and never
    # found by a directory sync): Intune refuses certificates for them.
    not_in_entra: int = 0
    errors: list[RowError] = field(default_factory=list)
    more_errors: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def changed(self) -> bool:
        return self.ok and bool(self.created or self.updated or self.groups_created)

    def error(self, row: int | None, code: str, message: str) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(row, code, message))
        else:
            self.more_errors += 1


class FileRejected(Exception):
    def __init__(self, code: str, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.row = code, message, row


# --- Reading the file -------------------------------------------------------------


def read_rows(
    file: IO[bytes], columns: Mapping[str, Sequence[str]], required: Iterable[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(row number, {column: value})`` for each non-blank data row, keyed by canonical column."""
    data = file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise FileRejected("file_too_large", f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        table = CsvFile(data)
        index = _map_header(table, columns, required)
        for count, record in enumerate(table.records(), start=1):
            if count > MAX_ROWS:
                raise FileRejected("too_many_rows", f"The file has more than {MAX_ROWS} rows; split it up.")
            cells = record.cells
            if len(cells) > len(table.header):
                raise FileRejected(
                    "extra_cells",
                    f"Row {record.row} has {len(cells)} cells but the header has {len(table.header)}.",
                    record.row,
                )
            yield (
                record.row,
                {
                    name: cells[position].strip() if position < len(cells) else ""
                    for name, position in index.items()
                },
            )
    except CsvRefused as exc:
        # For text that cannot be read the report names the line, which an editor can find.
        raise FileRejected(exc.code, exc.message, exc.line) from exc


def _map_header(
    table: CsvFile, columns: Mapping[str, Sequence[str]], required: Iterable[str]
) -> dict[str, int]:
    """Map canonical column names to positions. ``columns``: name -> (documented header, *other spellings)."""
    header = table.header
    index: dict[str, int] = {}
    for position, (raw, key) in enumerate(zip(header, table.keys, strict=True)):
        for name, spellings in columns.items():
            if key == name or key in {normalise_header(s) for s in spellings}:
                if name in index:
                    raise FileRejected("duplicate_column", f"The column \u201c{raw}\u201d appears twice.", 1)
                index[name] = position
    missing = [name for name in required if name not in index]
    if missing:
        raise FileRejected(
            "missing_column",
            "The header row lacks the required column"
            + ("s " if len(missing) > 1 else " ")
            + ", ".join(f"\u201c{columns[name][0]}\u201d" for name in missing)
            + ". Found: "
            + (", ".join(f"\u201c{h}\u201d" for h in header if h.strip()) or "nothing"),
            1,
        )
    return index


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _LOOKUP_CHUNK):
        yield values[start : start + _LOOKUP_CHUNK]


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# --- Users ---------------------------------------------------------------------------

USER_COLUMNS: dict[str, Sequence[str]] = {
    # canonical name: (documented header, *other accepted spellings), all compared lower-case without spaces
    "userprincipalname": ("userPrincipalName", "upn", "username"),
    "objectid": ("objectId", "id"),
    "displayname": ("displayName", "name"),
    "givenname": ("givenName", "firstname"),
    "surname": ("surname", "lastname"),
    "mail": ("mail", "email", "emailaddress"),
    "proxyaddresses": ("proxyAddresses",),
    "department": ("department",),
    "jobtitle": ("jobTitle", "title"),
    "accountenabled": ("accountEnabled", "enabled"),
}
_USER_TEXT_FIELDS = {
    "displayname": "display_name",
    "givenname": "given_name",
    "surname": "surname",
    "mail": "mail",
    "department": "department",
    "jobtitle": "job_title",
}
AUDITED_USER_FIELDS = (
    "upn",
    "source",
    "display_name",
    "given_name",
    "surname",
    "mail",
    "proxy_addresses",
    "department",
    "job_title",
    "account_enabled",
    "removed_at",
)
_TRUE = {"true", "yes", "1", "enabled"}
_FALSE = {"false", "no", "0", "disabled", "blocked"}
_UPN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class _UserRow:
    number: int
    upn: str
    object_id: uuid.UUID | None
    values: dict[str, Any]


def _parse_user_row(number: int, cells: dict[str, str], report: ImportReport) -> _UserRow | None:
    errors_before = len(report.errors) + report.more_errors
    upn = cells.get("userprincipalname", "")
    if not upn:
        report.error(number, "missing_value", "The user principal name is empty.")
    elif len(upn) > 255 or not _UPN.match(upn):
        report.error(
            number, "invalid_upn", f"\u201c{upn[:80]}\u201d is not a user principal name (name@domain)."
        )
    object_id = None
    if cells.get("objectid"):
        object_id = parse_uuid(cells["objectid"])
        if object_id is None:
            report.error(
                number, "invalid_object_id", f"\u201c{cells['objectid'][:80]}\u201d is not an object id."
            )
    values: dict[str, Any] = {}
    for column, model_field in _USER_TEXT_FIELDS.items():
        value = cells.get(column, "")
        if not value:
            continue
        limit = getattr(DirectoryUser._meta.get_field(model_field), "max_length", None) or 255
        if len(value) > limit:
            report.error(
                number, "value_too_long", f"{USER_COLUMNS[column][0]} is longer than {limit} characters."
            )
        values[model_field] = value
    if values.get("mail"):
        try:
            validate_email(values["mail"])
        except ValidationError:
            report.error(
                number, "invalid_email", f"\u201c{values['mail'][:80]}\u201d is not an e-mail address."
            )
    if cells.get("proxyaddresses"):
        values["proxy_addresses"] = _parse_proxies(number, cells["proxyaddresses"], report)
    enabled = cells.get("accountenabled", "").lower()
    if enabled:
        if enabled not in _TRUE | _FALSE:
            report.error(
                number,
                "invalid_boolean",
                f"accountEnabled must be true or false, not \u201c{enabled[:20]}\u201d.",
            )
        values["account_enabled"] = enabled in _TRUE
    if len(report.errors) + report.more_errors > errors_before:
        return None
    return _UserRow(number, upn, object_id, values)


def _parse_proxies(number: int, raw: str, report: ImportReport) -> list[str]:
    proxies = [p.strip() for p in re.split(r"[;|]", raw) if p.strip()]
    for proxy in proxies:
        prefix, _, address = proxy.partition(":")
        if not address or not prefix.isalnum():
            report.error(
                number,
                "invalid_proxy_address",
                f"\u201c{proxy[:80]}\u201d is not type:address (e.g. smtp:a@b.com).",
            )
    if sum(1 for p in proxies if p.startswith("SMTP:")) > 1:
        report.error(
            number, "two_primary_addresses", "Only one proxy address may be the primary (upper-case SMTP:)."
        )
    return proxies


def _existing_users(rows: list[_UserRow]) -> tuple[dict[uuid.UUID, DirectoryUser], dict[str, DirectoryUser]]:
    by_id: dict[uuid.UUID, DirectoryUser] = {}
    by_upn: dict[str, DirectoryUser] = {}
    ids = [r.object_id for r in rows if r.object_id]
    upns = [r.upn.lower() for r in rows]
    for chunk in _chunks(ids):
        by_id.update({u.object_id: u for u in DirectoryUser.objects.filter(object_id__in=chunk)})
    for chunk in _chunks(upns):
        by_upn.update(
            {u.upn.lower(): u for u in DirectoryUser.objects.annotate(l=Lower("upn")).filter(l__in=chunk)}
        )
    for user in by_id.values():
        by_upn.setdefault(user.upn.lower(), user)
    return by_id, by_upn


def import_users_csv(actor: Actor, file: IO[bytes]) -> ImportReport:
    """Create or update directory users from a CSV file; see ``USER_COLUMNS`` for the header."""
    report = ImportReport(kind="users")
    rows: list[_UserRow] = []
    seen: dict[str, int] = {}
    try:
        for number, cells in read_rows(file, USER_COLUMNS, required=["userprincipalname"]):
            report.rows += 1
            row = _parse_user_row(number, cells, report)
            if row is None:
                continue
            for key in (row.upn.lower(), str(row.object_id or "")):
                if key and key in seen:
                    report.error(number, "duplicate_row", f"{key} is already in row {seen[key]}.")
                    break
            else:
                seen[row.upn.lower()] = number
                if row.object_id:
                    seen[str(row.object_id)] = number
                rows.append(row)
    except FileRejected as exc:
        report.error(exc.row, exc.code, exc.message)
        return report
    if not report.ok:
        return report
    plan = _plan_users(rows, report)
    if report.ok:
        save_or_report(actor, report, "Import users", lambda: _save_users(actor, plan, report))
    return report


@dataclass
class _UserPlan:
    create: list[DirectoryUser] = field(default_factory=list)
    update: list[tuple[DirectoryUser, dict[str, Any]]] = field(default_factory=list)


def _plan_users(rows: list[_UserRow], report: ImportReport) -> _UserPlan:
    by_id, by_upn = _existing_users(rows)
    plan = _UserPlan()
    for row in rows:
        user = by_id.get(row.object_id) if row.object_id else None
        holder = by_upn.get(row.upn.lower())
        if user is None and holder is not None and row.object_id:
            report.error(
                row.number,
                "object_id_conflict",
                f"{holder.upn} already exists with object id {holder.object_id}, not {row.object_id}.",
            )
            continue
        user = user or holder
        if user is not None and holder is not None and holder.pk != user.pk:
            report.error(
                row.number, "upn_taken", f"{row.upn} already belongs to another user ({holder.object_id})."
            )
            continue
        if user is None:
            if not row.values.get("display_name"):
                report.error(row.number, "missing_value", "displayName is required for a new user.")
                continue
            plan.create.append(
                DirectoryUser(
                    object_id=row.object_id or uuid.uuid4(), upn=row.upn, source=UserSource.CSV, **row.values
                )
            )
            report.not_in_entra += 1
            continue
        report.not_in_entra += not user.in_entra
        wanted = {"upn": row.upn, **row.values, "removed_at": None}
        diff = {k: v for k, v in wanted.items() if getattr(user, k) != v}
        if diff:
            plan.update.append((user, diff))
        else:
            report.unchanged += 1
    return plan


def _save_users(actor: Actor, plan: _UserPlan, report: ImportReport) -> list[dict[str, Any]]:
    resources = []
    DirectoryUser.objects.bulk_create(plan.create)
    for user in plan.create:
        after = audit.snapshot(user, AUDITED_USER_FIELDS)
        resources.append(
            audit.resource(user, type="User", id=str(user.object_id), changes=audit.changes({}, after))
        )
    now = timezone.now()
    fields: set[str] = {"updated_at"}
    for user, diff in plan.update:
        before = audit.snapshot(user, AUDITED_USER_FIELDS)
        for name, value in diff.items():
            setattr(user, name, value)
        user.updated_at = now
        fields |= diff.keys()
        after = audit.snapshot(user, AUDITED_USER_FIELDS)
        resources.append(
            audit.resource(user, type="User", id=str(user.object_id), changes=audit.changes(before, after))
        )
    DirectoryUser.objects.bulk_update([u for u, _ in plan.update], sorted(fields), batch_size=_LOOKUP_CHUNK)
    report.created, report.updated = len(plan.create), len(plan.update)
    return resources


def save_or_report(actor: Actor, report: ImportReport, activity: str, save: Any) -> None:
    """Run ``save`` (it returns the audit resources) and audit it in one transaction; a conflict with
    a concurrent change becomes a file error and nothing is kept."""
    try:
        with transaction.atomic():
            resources = save()
            if report.changed:
                audit.record(
                    actor,
                    activity=activity,
                    category=CATEGORY,
                    operation=AuditEvent.Operation.ACTION,
                    resources=resources,
                )
    except IntegrityError:
        # Another change got in between the checks and the write (or a UPN swap within the file).
        report.created = report.updated = report.groups_created = 0
        report.error(
            None, "conflict", "The directory changed while importing; nothing was imported. Try again."
        )

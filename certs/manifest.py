"""Reading a bulk import: PFX files (loose or in a ZIP) and the CSV manifest that names their users.

Everything is checked before anything is stored: a problem anywhere refuses the whole
upload with a list of errors (stable code, message, CSV line number where there is one).
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db.models.functions import Lower

from certs.imports import Entry
from certs.models import Purpose
from directory.models import DirectoryUser
from portal.lib.csvfile import CsvFile, CsvRefused

COLUMNS = ("filename", "upn", "password", "purpose")
TEMPLATE = (
    "filename,upn,password,purpose\r\n"
    "alice.pfx,alice@contoso.com,Export-Password-1,smimeEncryption\r\n"
    "bob.pfx,,Export-Password-2,smimeSigning\r\n"
)
ARCHIVE_SUFFIXES = (".zip", ".7z", ".rar", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".cab", ".jar")
ARCHIVE_MAGICS = (b"PK\x03\x04", b"7z\xbc\xaf", b"Rar!", b"\x1f\x8b")


def max_files() -> int:
    return settings.CERTS_MAX_FILES


def max_uncompressed_bytes() -> int:
    return settings.CERTS_MAX_UNCOMPRESSED_BYTES


def max_manifest_bytes() -> int:
    return settings.CERTS_MAX_MANIFEST_BYTES


def max_file_bytes() -> int:
    return settings.PFX_MAX_FILE_BYTES


@dataclass(frozen=True)
class ManifestError:
    code: str
    message: str
    line: int | None = None
    filename: str = ""


class Rejected(Exception):
    """The upload is rejected as a whole, with every problem found in it (by line where there is one)."""

    def __init__(self, errors: list[ManifestError]) -> None:
        super().__init__(f"{len(errors)} problems")
        self.errors = errors


@dataclass(frozen=True)
class Row:
    line: int
    filename: str
    upn: str
    password: str
    purpose: str


def _safe_name(name: str) -> str | None:
    """The normalised relative path of an archive member, or None if it is absolute or climbs out."""
    name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def read_zip(data: bytes) -> dict[str, bytes]:
    """The PFX files of a ZIP, by relative path; refuses bombs, nesting, traversal and duplicates."""
    errors: list[ManifestError] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise Rejected([ManifestError("bad_zip", "The ZIP file cannot be read. Create it again.")]) from exc
    if len(members) > max_files():
        raise Rejected(
            [
                ManifestError(
                    "too_many_files",
                    f"The ZIP holds {len(members)} files; at most {max_files()} are allowed.",
                )
            ]
        )
    total = sum(m.file_size for m in members)
    if total > max_uncompressed_bytes():
        raise Rejected(
            [
                ManifestError(
                    "zip_too_large",
                    f"The ZIP expands to {total} bytes; at most {max_uncompressed_bytes()} are allowed.",
                )
            ]
        )
    seen: dict[str, str] = {}
    names: list[tuple[str, zipfile.ZipInfo]] = []
    for member in members:
        safe = _safe_name(member.filename)
        if safe is None:
            errors.append(
                ManifestError(
                    "unsafe_path",
                    "The ZIP has a file with an absolute path or '..' in its name.",
                    filename=member.filename[:200],
                )
            )
            continue
        if safe.lower().endswith(ARCHIVE_SUFFIXES):
            errors.append(
                ManifestError("nested_archive", "Archives inside the ZIP are not accepted.", filename=safe)
            )
            continue
        if safe.lower() in seen:
            errors.append(
                ManifestError("duplicate_name", "Two files in the ZIP have the same name.", filename=safe)
            )
            continue
        if member.file_size > max_file_bytes():
            errors.append(
                ManifestError("file_too_large", "The file is larger than a PFX file can be.", filename=safe)
            )
            continue
        seen[safe.lower()] = safe
        names.append((safe, member))
    files: dict[str, bytes] = {}
    expanded = 0
    if not errors:
        for safe, member in names:
            try:
                content = _read_member(archive, member, max_file_bytes())
            except _TooLarge:
                errors.append(
                    ManifestError(
                        "file_too_large", "The file is larger than a PFX file can be.", filename=safe
                    )
                )
                continue
            except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError, RuntimeError, EOFError):
                errors.append(ManifestError("bad_zip", "This file in the ZIP cannot be read.", filename=safe))
                continue
            expanded += len(content)
            if expanded > max_uncompressed_bytes():
                raise Rejected(
                    [
                        ManifestError(
                            "zip_too_large",
                            f"The ZIP expands to more than {max_uncompressed_bytes()} bytes.",
                        )
                    ]
                )
            if content.startswith(ARCHIVE_MAGICS):
                errors.append(
                    ManifestError(
                        "nested_archive", "Archives inside the ZIP are not accepted.", filename=safe
                    )
                )
                continue
            files[safe] = content
    if errors:
        raise Rejected(errors)
    return files


class _TooLarge(Exception):
    """An archive member holds more bytes than it may."""


# Decompressed bytes asked of an archive member at a time: what a lying entry can cost in memory.
_READ_CHUNK = 64 * 1024


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, cap: int) -> bytes:
    """The member's bytes, decompressed a chunk at a time; stops at the first byte past ``cap``.

    The sizes in a ZIP's headers are whatever its maker wrote: an entry declaring 1,000 bytes
    may inflate to gigabytes. Reading it whole (``ZipFile.read``) decompresses everything
    before any check can run, so the entry is streamed and never asked for more than one byte
    past the cap.
    """
    chunks: list[bytes] = []
    size = 0
    with archive.open(member) as stream:
        while chunk := stream.read(min(_READ_CHUNK, cap + 1 - size)):
            size += len(chunk)
            if size > cap:
                raise _TooLarge
            chunks.append(chunk)
    return b"".join(chunks)


def read_files(uploads: Iterable[tuple[str, bytes]]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    errors: list[ManifestError] = []
    lowered: set[str] = set()
    for name, data in uploads:
        base = posixpath.basename(name.replace("\\", "/"))
        if base.lower() in lowered:
            errors.append(
                ManifestError("duplicate_name", "Two uploaded files have the same name.", filename=base)
            )
            continue
        lowered.add(base.lower())
        files[base] = data
    if len(files) > max_files():
        errors.append(
            ManifestError("too_many_files", f"At most {max_files()} files can be imported at once.")
        )
    if errors:
        raise Rejected(errors)
    return files


# The manifest's codes for what the shared CSV reader refuses.
_CSV_CODES = {"encoding": "csv_encoding", "empty": "csv_empty", "not_csv": "csv_syntax"}


def _csv_error(exc: CsvRefused) -> ManifestError:
    return ManifestError(_CSV_CODES.get(exc.code, "csv_syntax"), exc.message, line=exc.line)


def read_manifest(data: bytes) -> list[Row]:
    """The manifest's rows, from a CSV file in any encoding and delimiter the shared CSV reader accepts."""
    if len(data) > max_manifest_bytes():
        raise Rejected(
            [
                ManifestError(
                    "manifest_too_large", f"The manifest is larger than {max_manifest_bytes()} bytes."
                )
            ]
        )
    try:
        table = CsvFile(data)
    except CsvRefused as exc:
        raise Rejected([_csv_error(exc)]) from exc
    header = table.keys
    missing = [c for c in ("filename", "password") if c not in header]
    unknown = [raw.strip() for raw, key in zip(table.header, header, strict=True) if key not in COLUMNS]
    if missing or unknown:
        raise Rejected(
            [
                ManifestError(
                    "csv_header",
                    "The first line must name the columns filename,upn,password,purpose "
                    f"(missing: {', '.join(missing) or 'none'}; unknown: {', '.join(unknown) or 'none'}).",
                    line=1,
                )
            ]
        )
    errors: list[ManifestError] = []
    rows: list[Row] = []
    purposes = {p.value.lower(): p.value for p in Purpose}
    names: dict[str, int] = {}
    try:
        for record in table.records():
            line, values = record.line, record.cells
            if len(values) != len(header):
                errors.append(
                    ManifestError(
                        "csv_columns", f"Expected {len(header)} columns, found {len(values)}.", line=line
                    )
                )
                continue
            fields = dict(zip(header, values, strict=True))
            filename = fields.get("filename", "").strip()
            purpose_text = fields.get("purpose", "").strip() or "unassigned"
            if not filename:
                errors.append(ManifestError("csv_missing_filename", "The filename is empty.", line=line))
                continue
            if (first := names.get(filename.lower())) is not None:
                errors.append(
                    ManifestError(
                        "csv_duplicate_row",
                        f"Line {first} already names this file. Keep one row per file.",
                        line=line,
                        filename=filename,
                    )
                )
                continue
            names[filename.lower()] = line
            if purpose_text.lower() not in purposes:
                errors.append(
                    ManifestError(
                        "csv_bad_purpose",
                        "The purpose must be unassigned, smimeEncryption or smimeSigning.",
                        line=line,
                        filename=filename,
                    )
                )
                continue
            rows.append(
                Row(
                    line,
                    filename,
                    fields.get("upn", "").strip(),
                    fields["password"],
                    purposes[purpose_text.lower()],
                )
            )
    except CsvRefused as exc:
        errors.append(_csv_error(exc))
    if not rows and not errors:
        errors.append(ManifestError("csv_empty", "The manifest has no rows."))
    if errors:
        raise Rejected(errors)
    return rows


def _match(name: str, exact: dict[str, str], by_base: dict[str, list[str]]) -> str | None:
    """The uploaded file a manifest row names: its path (any case), else a base name only one file has."""
    wanted = _safe_name(name)
    if wanted is None:
        return None
    if wanted.lower() in exact:
        return exact[wanted.lower()]
    candidates = by_base.get(posixpath.basename(wanted).lower(), [])
    return candidates[0] if len(candidates) == 1 else None


def entries(rows: list[Row], files: dict[str, bytes]) -> list[Entry]:
    """Pair each row with its file and check the named users exist; every problem is reported at once."""
    errors: list[ManifestError] = []
    # Both indexes are built once: one lookup per row keeps 10,000 rows linear.
    exact = {key.lower(): key for key in files}
    by_base: dict[str, list[str]] = {}
    for key in files:
        by_base.setdefault(posixpath.basename(key).lower(), []).append(key)
    upns = {r.upn.lower() for r in rows if r.upn}
    known = set(
        DirectoryUser.objects.annotate(u=Lower("upn"))
        .filter(u__in=upns, removed_at__isnull=True)
        .values_list("u", flat=True)
    )
    used: set[str] = set()
    result: list[Entry] = []
    for row in rows:
        found = _match(row.filename, exact, by_base)
        if found is None:
            errors.append(
                ManifestError(
                    "missing_file", "No uploaded file has this name.", line=row.line, filename=row.filename
                )
            )
            continue
        key = found
        used.add(key)
        if row.upn and row.upn.lower() not in known:
            errors.append(
                ManifestError(
                    "unknown_upn",
                    f"No user in the directory has the UPN {row.upn}.",
                    line=row.line,
                    filename=row.filename,
                )
            )
            continue
        result.append(
            Entry(filename=key, data=files[key], password=row.password, upn=row.upn, purpose=row.purpose)
        )
    for key in files:
        if key not in used:
            errors.append(ManifestError("file_without_row", "No manifest row names this file.", filename=key))
    if errors:
        raise Rejected(errors)
    return result

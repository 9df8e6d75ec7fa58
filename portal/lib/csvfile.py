"""One reader for every uploaded CSV file, whichever spreadsheet app saved it.

Encodings: UTF-8 with or without a byte-order mark ("CSV UTF-8" in Excel), and UTF-16 little- or
big-endian with a byte-order mark ("Unicode text" in Excel). Anything else is refused with the
code ``encoding``, never guessed: a password read in the wrong encoding would be silently wrong.
Delimiters: comma, semicolon (Excel where the decimal mark is a comma) or tab, whichever the first
line holds most of. Header cells are normalised, so ``File name``, ``FILENAME`` and Entra's
``User name [userPrincipalName] Required`` all name a column the same way.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

DELIMITERS = ",;\t"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
_SAVE_AS = "Save the file as \u201cCSV UTF-8\u201d and try again."


class CsvRefused(Exception):
    """The file cannot be read as CSV. ``code`` is stable; ``line`` counts the header as line 1."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.line = code, message, line


@dataclass(frozen=True)
class Record:
    """A data record: ``row`` counts records (the header is row 1), ``line`` is the text line it ends on."""

    row: int
    line: int
    cells: list[str]


def _looks_like_utf16_without_bom(data: bytes) -> bool:
    head = data[:64]
    return len(head) >= 4 and (not any(head[0::2]) or not any(head[1::2]))


def decode(data: bytes) -> str:
    """The file's text; ``CsvRefused("encoding")`` unless it is UTF-8 or UTF-16 with a byte-order mark."""
    if data.startswith(_UTF32_BOMS):
        raise CsvRefused("encoding", f"The file is UTF-32 text. {_SAVE_AS}")
    if data.startswith(_UTF16_BOMS):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise CsvRefused("encoding", "The file starts like UTF-16 text but is not valid UTF-16.") from exc
    if b"\x00" in data and _looks_like_utf16_without_bom(data):
        raise CsvRefused("encoding", f"The file looks like UTF-16 text without a byte-order mark. {_SAVE_AS}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CsvRefused("encoding", f"Line {line} is not UTF-8 text. {_SAVE_AS}", line) from exc


def normalise_header(raw: str) -> str:
    """A header cell as a key: the bracketed name if there is one, lower-case letters and digits only."""
    bracketed = re.search(r"\[([^\]]+)\]", raw)
    name = bracketed.group(1) if bracketed else raw
    return re.sub(r"[^a-z0-9]", "", name.lower())


def sniff_delimiter(first_line: str) -> str:
    # A tie (a one-column file) goes to the comma, the first of DELIMITERS.
    return max(DELIMITERS, key=first_line.count)


class CsvFile:
    """An uploaded CSV file: its delimiter, its header (as written and as keys), then its records.

    The text is decoded and checked when the object is made; records are parsed as they are read.
    Reading raises ``CsvRefused`` with the code ``not_csv`` at the first line that is not CSV.
    """

    def __init__(self, data: bytes) -> None:
        text = decode(data)
        if not text.strip():
            raise CsvRefused("empty", "The file is empty.")
        if "\x00" in text:
            raise CsvRefused("not_csv", "The file is not a CSV text file.")
        self.delimiter = sniff_delimiter(text.split("\n", 1)[0])
        self._reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
        try:
            self.header: list[str] = next(self._reader, [])
        except csv.Error as exc:
            raise self._refusal(exc) from exc
        self.keys = [normalise_header(cell) for cell in self.header]

    def _refusal(self, exc: csv.Error) -> CsvRefused:
        line = self._reader.line_num
        return CsvRefused("not_csv", f"Line {line} cannot be read as CSV: {exc}.", line)

    def records(self) -> Iterator[Record]:
        """The data records, skipping blank ones."""
        try:
            for row, cells in enumerate(self._reader, start=2):
                if any(cell.strip() for cell in cells):
                    yield Record(row, self._reader.line_num, cells)
        except csv.Error as exc:
            raise self._refusal(exc) from exc

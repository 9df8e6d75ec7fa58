"""CSV exports that open safely in spreadsheet apps, streamed row by row."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

# Spreadsheet apps run a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """The cell's text, with a leading quote when a spreadsheet would otherwise run it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in _FORMULA_STARTS else text


class Echo:
    """A file-like object for ``csv.writer`` that hands each row back for a streaming response."""

    def write(self, value: str) -> str:
        return value


def csv_download(
    filename: str, header: Sequence[str], rows: Iterable[Iterable[object]]
) -> StreamingHttpResponse:
    """A CSV attachment written as ``rows`` yields, so an export of any size holds one row in memory.

    Every cell goes through :func:`spreadsheet_safe`: names, subjects and reasons come from users
    and certificates, and a cell that a spreadsheet would run must arrive as text.
    """
    writer = csv.writer(Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([spreadsheet_safe(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    return response

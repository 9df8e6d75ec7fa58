"""CSV exports that open safely in spreadsheet apps, streamed row by row."""

from __future__ import annotations

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

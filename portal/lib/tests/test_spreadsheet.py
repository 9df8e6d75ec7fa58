from __future__ import annotations

import csv

import pytest

from portal.lib.spreadsheet import Echo, csv_download, spreadsheet_safe


@pytest.mark.parametrize("value", ["=HYPERLINK(1)", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_it_quotes_cells_a_spreadsheet_would_run_as_formulas(value: str) -> None:
    assert spreadsheet_safe(value) == "'" + value


def test_it_leaves_ordinary_cells_and_turns_none_into_an_empty_cell() -> None:
    assert spreadsheet_safe("alice@contoso.com") == "alice@contoso.com"
    assert spreadsheet_safe(None) == ""
    assert spreadsheet_safe(42) == "42"


def test_the_echo_writer_hands_back_each_csv_row() -> None:
    assert csv.writer(Echo()).writerow(["a", "b"]) == "a,b\r\n"


def test_a_csv_download_produces_each_row_only_when_the_response_is_read() -> None:
    produced: list[int] = []

    def rows():
        for number in range(3):
            produced.append(number)
            yield [number, f"=cmd|{number}", None]

    response = csv_download("export.csv", ["n", "text", "empty"], rows())
    assert produced == []
    lines = iter(response)
    assert next(lines) == b"n,text,empty\r\n"
    assert next(lines) == b"0,'=cmd|0,\r\n"
    assert produced == [0]
    assert b"".join(lines) == b"1,'=cmd|1,\r\n2,'=cmd|2,\r\n"
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="export.csv"'


def test_a_csv_download_names_its_file_safely() -> None:
    response = csv_download('r\u00e9sum\u00e9 "q".csv', ["a"], [])
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''r%C3%A9sum%C3%A9%20%22q%22.csv"

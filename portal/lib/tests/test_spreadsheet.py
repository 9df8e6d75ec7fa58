from __future__ import annotations

import csv

import pytest

from portal.lib.spreadsheet import Echo, spreadsheet_safe


@pytest.mark.parametrize("value", ["=HYPERLINK(1)", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_it_quotes_cells_a_spreadsheet_would_run_as_formulas(value: str) -> None:
    assert spreadsheet_safe(value) == "'" + value


def test_it_leaves_ordinary_cells_and_turns_none_into_an_empty_cell() -> None:
    assert spreadsheet_safe("alice@contoso.com") == "alice@contoso.com"
    assert spreadsheet_safe(None) == ""
    assert spreadsheet_safe(42) == "42"


def test_the_echo_writer_hands_back_each_csv_row() -> None:
    assert csv.writer(Echo()).writerow(["a", "b"]) == "a,b\r\n"

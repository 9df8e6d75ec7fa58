from __future__ import annotations

import pytest

from portal.lib.csvfile import CsvFile, CsvRefused, normalise_header

TEXT = "Filename;UPN;Password\r\nalice.pfx;alice@contoso.com;p\u00e4ss,word;1\r\n"


def _read(data: bytes) -> tuple[CsvFile, list[list[str]]]:
    table = CsvFile(data)
    return table, [record.cells for record in table.records()]


@pytest.mark.parametrize(
    "data",
    [
        TEXT.encode("utf-8"),
        "\ufeff".encode() + TEXT.encode("utf-8"),
        TEXT.encode("utf-16"),
        b"\xff\xfe" + TEXT.encode("utf-16-le"),
        b"\xfe\xff" + TEXT.encode("utf-16-be"),
    ],
    ids=["utf-8", "utf-8 with bom", "utf-16", "utf-16-le with bom", "utf-16-be with bom"],
)
def test_utf8_and_utf16_with_a_byte_order_mark_read_the_same(data: bytes) -> None:
    table, records = _read(data)
    assert table.header == ["Filename", "UPN", "Password"]
    assert table.keys == ["filename", "upn", "password"]
    assert records == [["alice.pfx", "alice@contoso.com", "p\u00e4ss,word", "1"]]


@pytest.mark.parametrize(("delimiter", "cells"), [(",", "a,b"), (";", "a;b"), ("\t", "a\tb")])
def test_the_delimiter_is_the_one_the_first_line_holds_most_of(delimiter: str, cells: str) -> None:
    table, records = _read(f"upn{delimiter}password\r\n{cells}\r\n".encode())
    assert table.delimiter == delimiter
    assert records == [["a", "b"]]


def test_delimiters_inside_later_cells_do_not_change_the_choice() -> None:
    table, records = _read(b"filename,password\nalice.pfx,semi;colons;and\ttabs\n")
    assert table.delimiter == ","
    assert records == [["alice.pfx", "semi;colons;and\ttabs"]]


def test_a_one_column_file_is_read_with_commas() -> None:
    table, records = _read(b"upn\na@b.com\n")
    assert (table.delimiter, records) == (",", [["a@b.com"]])


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("File name", "filename"),
        (" FILENAME ", "filename"),
        ("User name [userPrincipalName] Required", "userprincipalname"),
        ("object_id", "objectid"),
    ],
)
def test_header_cells_are_normalised_to_keys(raw: str, key: str) -> None:
    assert normalise_header(raw) == key


def test_blank_records_are_skipped_and_records_know_their_row_and_line() -> None:
    table = CsvFile(b'upn,note\n\na@b.com,"two\nlines"\n , \nc@d.com,x\n')
    assert [(r.row, r.line, r.cells) for r in table.records()] == [
        (3, 4, ["a@b.com", "two\nlines"]),
        (5, 6, ["c@d.com", "x"]),
    ]


@pytest.mark.parametrize(
    ("data", "code", "line"),
    [
        ("upn\nj\u00f6rg@contoso.com\n".encode("latin-1"), "encoding", 2),
        ("upn\nj\u00f6rg@contoso.com\n".encode("utf-16-le"), "encoding", None),
        ("upn\nj\u00f6rg@contoso.com\n".encode("utf-16-be"), "encoding", None),
        (b"\xff\xfeu\x00p\x00n", "encoding", None),
        ("upn\n".encode("utf-32"), "encoding", None),
        (b"", "empty", None),
        (b" \r\n\t\n", "empty", None),
        ("\ufeff".encode(), "empty", None),
        (b"\x00\x01\x02upn\n", "not_csv", None),
    ],
    ids=[
        "latin-1",
        "utf-16-le without bom",
        "utf-16-be without bom",
        "broken utf-16",
        "utf-32",
        "empty",
        "blank",
        "bom only",
        "binary",
    ],
)
def test_a_file_that_is_not_csv_text_is_refused_with_a_stable_code(
    data: bytes, code: str, line: int | None
) -> None:
    with pytest.raises(CsvRefused) as refused:
        CsvFile(data)
    assert (refused.value.code, refused.value.line) == (code, line)
    assert refused.value.message


def test_a_cell_too_large_for_csv_is_refused_at_its_line_when_read() -> None:
    table = CsvFile(b'upn\na@b.com\n"' + b"a" * 200_000 + b'"\n')
    records = table.records()
    assert next(records).cells == ["a@b.com"]
    with pytest.raises(CsvRefused) as refused:
        next(records)
    assert (refused.value.code, refused.value.line) == ("not_csv", 3)

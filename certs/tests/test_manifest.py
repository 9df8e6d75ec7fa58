"""Reading a bulk upload: ZIP entries are streamed under a hard cap, and rows meet their files in linear time."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from typing import Any

import pytest

from certs import manifest
from certs.tests.archives import lying_zip


def test_a_zip_entry_that_lies_about_its_size_is_refused_without_being_inflated() -> None:
    data = lying_zip(holds=64 << 20, declares=1000)
    tracemalloc.start()
    try:
        with pytest.raises(manifest.Rejected) as refused:
            manifest.read_zip(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [e.code for e in refused.value.errors] == ["bad_zip"]
    # Inflating the entry would take 64 MiB (and the old whole-entry read twice that).
    assert peak < 2 << 20


def test_an_archive_member_is_read_no_further_than_one_byte_past_the_cap() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.pfx", bytes(300_000))
        archive.writestr("small.pfx", b"x" * 1000)
    archive = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    asked: list[int] = []
    opened = archive.open

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        stream = opened(*args, **kwargs)
        read = stream.read

        def counted(n: int = -1) -> bytes:
            chunk: bytes = read(n)
            asked.append(len(chunk))
            return chunk

        stream.read = counted  # type: ignore[method-assign]
        return stream

    archive.open = counting_open  # type: ignore[method-assign]
    with pytest.raises(manifest._TooLarge):
        manifest._read_member(archive, archive.getinfo("big.pfx"), 1000)
    assert sum(asked) == 1001
    assert manifest._read_member(archive, archive.getinfo("small.pfx"), 1000) == b"x" * 1000


class _CountingFiles(dict[str, bytes]):
    """The upload's files, counting how often the whole list is walked."""

    walks = 0

    def __iter__(self) -> Any:
        type(self).walks += 1
        return super().__iter__()


@pytest.mark.django_db
def test_matching_walks_the_file_list_a_fixed_number_of_times_however_many_rows() -> None:
    walks = []
    for count in (10, 400):
        files = _CountingFiles({f"site/user{i:04d}.pfx": b"x" for i in range(count)})
        rows = [manifest.Row(i + 2, f"user{i:04d}.pfx", "", "pw", "unassigned") for i in range(count)]
        _CountingFiles.walks = 0
        entries = manifest.entries(rows, files)
        assert [e.filename for e in entries] == list(dict.__iter__(files))
        walks.append(_CountingFiles.walks)
    assert walks[0] == walks[1] <= 3


def test_a_semicolon_separated_utf16_manifest_reads_like_a_comma_separated_utf8_one() -> None:
    comma = (
        "filename,upn,password,purpose\r\n"
        "alice.pfx,alice@contoso.com,P\u00e4ss;word 1,smimeEncryption\r\n"
        "bob.pfx,,Export-2,\r\n"
    )
    semicolon = (
        "filename;upn;password;purpose\r\n"
        'alice.pfx;alice@contoso.com;"P\u00e4ss;word 1";smimeEncryption\r\n'
        "bob.pfx;;Export-2;\r\n"
    )
    expected = [
        manifest.Row(2, "alice.pfx", "alice@contoso.com", "P\u00e4ss;word 1", "smimeEncryption"),
        manifest.Row(3, "bob.pfx", "", "Export-2", "unassigned"),
    ]
    assert manifest.read_manifest(comma.encode("utf-8")) == expected
    for encoding in ("utf-16", "utf-16-le", "utf-16-be"):
        bom = "\ufeff" if encoding != "utf-16" else ""
        assert manifest.read_manifest((bom + semicolon).encode(encoding)) == expected


def test_a_tab_separated_manifest_with_spreadsheet_style_headers_is_read() -> None:
    data = "File name\tUPN\tPassword\nalice.pfx\talice@contoso.com\t pw with spaces \n".encode("utf-16")
    assert manifest.read_manifest(data) == [
        manifest.Row(2, "alice.pfx", "alice@contoso.com", " pw with spaces ", "unassigned")
    ]


@pytest.mark.parametrize(
    ("data", "code", "line"),
    [
        ("filename,password\na.pfx,p\u00e4ss\n".encode("latin-1"), "csv_encoding", 2),
        ("filename,password\na.pfx,pass\n".encode("utf-16-le"), "csv_encoding", None),
        (b"filename,password\na.pfx,\x00\x01\n", "csv_syntax", None),
        (b"", "csv_empty", None),
        (b'filename,password\na.pfx,"' + b"p" * 200_000 + b'"\n', "csv_syntax", 2),
    ],
    ids=["latin-1", "utf-16 without bom", "binary", "empty", "cell too large"],
)
def test_a_manifest_that_is_not_csv_text_is_refused_with_a_stable_code(
    data: bytes, code: str, line: int | None
) -> None:
    with pytest.raises(manifest.Rejected) as refused:
        manifest.read_manifest(data)
    assert [(e.code, e.line) for e in refused.value.errors] == [(code, line)]

"""Bulk upload parsing in the web process: reading a ZIP and a CSV manifest and pairing each row with its file.

    .venv/bin/python benchmarks/manifest_matching.py [--rows 2500 10000] [--repeat 3]

For each size N, builds a ZIP of N small files (in a few folders, so rows match by base name
as well as by full path) and a manifest naming them, then times what the bulk page does with
the upload before it creates the batch: ``read_zip``, ``read_manifest`` and ``entries`` (the
row-to-file matching). The manifest leaves ``upn`` empty (the user is taken from the
certificate), so no database is needed and the figures are the parsing and matching alone.
10,000 rows is the documented maximum (``CERTS_MAX_FILES``); the upload has to finish well
inside the request timeout of a reverse proxy in front of the portal (README, "Web server").
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django

django.setup()

from certs import manifest  # noqa: E402


def upload(n: int) -> tuple[bytes, bytes]:
    archive = io.BytesIO()
    lines = ["filename,upn,password,purpose"]
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(n):
            folder = f"site-{i % 7}"
            z.writestr(f"{folder}/user{i:05d}.pfx", b"0" * 64)
            # Half the rows name the full path, half only the base name.
            name = f"{folder}/user{i:05d}.pfx" if i % 2 else f"user{i:05d}.pfx"
            lines.append(f"{name},,Export-{i:05d},smimeEncryption")
    return archive.getvalue(), ("\r\n".join(lines) + "\r\n").encode()


def measure(n: int) -> dict[str, float]:
    data, csv = upload(n)
    start = time.perf_counter()
    files = manifest.read_zip(data)
    zipped = time.perf_counter()
    rows = manifest.read_manifest(csv)
    parsed = time.perf_counter()
    entries = manifest.entries(rows, files)
    matched = time.perf_counter()
    assert len(entries) == n
    return {"read_zip": zipped - start, "read_manifest": parsed - zipped, "matching": matched - parsed}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[2_500, 10_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for n in args.rows:
        rounds = [measure(n) for _ in range(args.repeat)]
        figures = ", ".join(
            f"{step} {statistics.median(r[step] for r in rounds):.3f} s" for step in rounds[0]
        )
        print(f"{n:6d} rows (median of {args.repeat}): {figures}")


if __name__ == "__main__":
    main()

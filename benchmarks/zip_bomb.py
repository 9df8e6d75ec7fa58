"""Peak memory of the web process when a bulk upload's ZIP lies about an entry's size.

    .venv/bin/python benchmarks/zip_bomb.py [--mib 1024] [--declared 1000]

Builds a ZIP whose one entry declares ``--declared`` bytes in both headers but holds
``--mib`` MiB of zeros (about 1 MiB compressed per GiB), then hands it to ``read_zip`` as the
bulk page does, in a fresh process, and prints the outcome (refusal code) with the process's
peak resident memory above what it held before the call, and the peak of Python allocations
(tracemalloc) during the call.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 1024 * 1024


def child(mib: int, declared: int) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import tracemalloc

    import django

    django.setup()
    from certs import manifest
    from certs.tests.archives import lying_zip

    data = lying_zip(holds=mib * CHUNK, declares=declared, name=b"bomb.pfx")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = time.perf_counter()
    try:
        manifest.read_zip(data)
        outcome = "accepted"
    except manifest.Rejected as exc:
        outcome = "refused: " + ", ".join(e.code for e in exc.errors)
    elapsed = time.perf_counter() - start
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"ZIP of {len(data) / CHUNK:.1f} MiB, entry declares {declared} bytes, holds {mib} MiB: {outcome}; "
        f"peak RSS +{(after - before) / 1024:.1f} MiB, tracemalloc peak {traced / CHUNK:.1f} MiB, "
        f"{elapsed:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--declared", type=int, default=1000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.mib, args.declared)
        return
    # A fresh process, so the peak resident memory is this call's alone.
    argv = [sys.executable, __file__, "--child", "--mib", str(args.mib), "--declared", str(args.declared)]
    subprocess.run(argv, check=True)


if __name__ == "__main__":
    main()

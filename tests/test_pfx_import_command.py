"""`manage.py pfx import`, the automation path, run as a real process against real workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from certs.models import Certificate
from certs.tests.importing import add_key, directory_user, pfx_for
from conftest import _database_url


@pytest.mark.worker
def test_pfx_import_hands_the_batch_to_the_workers_and_reports_every_row(
    celery_worker: subprocess.Popen[bytes], broker_folder: Path | None, tmp_path: Path
) -> None:
    directory_user("alice@contoso.example")
    directory_user("bob@contoso.example")
    add_key()
    (tmp_path / "alice.pfx").write_bytes(pfx_for("alice@contoso.example", "alice-pw"))
    (tmp_path / "bob.pfx").write_bytes(pfx_for("bob@contoso.example", "bob-pw"))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "filename,upn,password,purpose\n"
        "alice.pfx,alice@contoso.example,alice-pw,smimeEncryption\n"
        "bob.pfx,bob@contoso.example,not-bobs-password,smimeEncryption\n"
    )
    env = {**os.environ, "DATABASE_URL": _database_url()}
    if broker_folder is not None:
        env["CELERY_BROKER_FOLDER"] = str(broker_folder)

    run = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "pfx",
            "import",
            "--manifest",
            str(manifest),
            "--dir",
            str(tmp_path),
            "--json",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    rows = {row["filename"]: row for row in report["rows"]}
    assert rows["alice.pfx"]["state"] == "stored"
    assert rows["bob.pfx"]["state"] == "failed"
    assert rows["bob.pfx"]["problem_code"] == "wrong_password"
    assert list(Certificate.objects.values_list("user__upn", flat=True)) == ["alice@contoso.example"]
    assert "alice-pw" not in run.stdout + run.stderr

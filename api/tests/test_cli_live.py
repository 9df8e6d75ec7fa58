"""The command-line client against a live portal with a real Celery worker: the example script's job,
and the client's exit codes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from api.tests.conftest import ApiClient
from certs.models import Certificate
from certs.tests.importing import add_key, directory_user, pfx_for
from portal.models import User

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

BOB = "bob@contoso.example"
CAROL = "carol@contoso.example"


def _pfx_command(tmp_path: Path) -> Path:
    """A ``pfx`` command running the client from this repository (as ``pip install ./cli`` would)."""
    command = tmp_path / "bin" / "pfx"
    command.parent.mkdir()
    cli = Path(settings.BASE_DIR) / "cli"
    command.write_text(f'#!/bin/sh\nPYTHONPATH="{cli}" exec "{sys.executable}" -m pfx_portal_cli "$@"\n')
    command.chmod(0o755)
    return command


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    rows = [
        ("bob-enc.pfx", BOB, "Bob-Pass-1", "smimeEncryption"),
        ("carol.pfx", CAROL, "Carol-Pass-2", "smimeEncryption"),
    ]
    for name, upn, password, _ in rows:
        (folder / name).write_bytes(pfx_for(upn, password))
    (folder / "bob-sig.pfx").write_bytes(pfx_for(BOB, "Bob-Pass-3", kind="rsa-sig"))
    rows.append(("bob-sig.pfx", BOB, "Bob-Pass-3", "smimeSigning"))
    with (folder / "manifest.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["filename", "upn", "password", "purpose"])
        writer.writerows(rows)
    return folder


def _env(live_server: Any, secret: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PFX_PORTAL_URL": str(live_server),
        "PFX_PORTAL_TOKEN": secret,
        "PFX": str(_pfx_command(tmp_path)),
    }


def test_the_example_script_imports_a_folder_lists_a_user_and_removes_one_certificate(
    live_server: Any,
    celery_worker: Any,
    intune_admin: User,
    api_as: Callable[..., ApiClient],
    tmp_path: Path,
) -> None:
    add_key()
    directory_user(BOB)
    directory_user(CAROL)
    env = _env(live_server, api_as(intune_admin).secret, tmp_path)
    script = Path(settings.BASE_DIR) / "scripts" / "cli_import_example.sh"
    done = subprocess.run(
        [str(script), str(_folder(tmp_path)), BOB], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stored" in done.stdout
    assert "Bob-Pass" not in done.stdout + done.stderr
    assert Certificate.objects.filter(upn=CAROL).count() == 1
    assert Certificate.objects.filter(upn=BOB).count() == 1


def test_the_clients_exit_codes_tell_scripts_what_went_wrong(
    live_server: Any,
    intune_admin: User,
    make_admin: Callable[..., User],
    api_as: Callable[..., ApiClient],
    tmp_path: Path,
) -> None:
    add_key()
    env = _env(live_server, api_as(intune_admin).secret, tmp_path)
    pfx = env["PFX"]

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([pfx, *args], env={**env, **extra}, capture_output=True, text=True, timeout=60)

    assert run("get-encryption-keys").returncode == 0
    assert run("get-user-pfx", "--upn", "nobody@contoso.example").returncode == 5
    assert run("get-encryption-keys", PFX_PORTAL_TOKEN="pfxp_wrong").returncode == 4
    assert run("import-user-pfx", str(tmp_path / "missing.pfx"), "--password-env", "NOPE").returncode == 2
    single = tmp_path / "bob.pfx"
    single.write_bytes(pfx_for(BOB, "Right-Pass"))
    directory_user(BOB)
    wrong = run("import-user-pfx", str(single), "--upn", BOB, "--password-env", "P", P="Wrong-Pass")
    assert wrong.returncode == 1
    assert "wrong_password" in wrong.stdout
    assert "Wrong-Pass" not in wrong.stdout + wrong.stderr
    right = run("import-user-pfx", str(single), "--upn", BOB, "--password-env", "P", "--json", P="Right-Pass")
    assert right.returncode == 0, right.stderr
    reader = api_as(make_admin("read_only_operator")).secret
    refused = run("remove-user-pfx", "--upn", BOB, PFX_PORTAL_TOKEN=reader)
    assert refused.returncode == 4
    assert "forbidden" in refused.stderr
    assert Certificate.objects.filter(upn=BOB).exists()
    bad_manifest = tmp_path / "bad"
    bad_manifest.mkdir()
    (bad_manifest / "a.pfx").write_bytes(b"x")
    (bad_manifest / "manifest.csv").write_text(
        "filename,upn,password,purpose\r\nother.pfx,a@b.c,pw,smimeSigning\r\n"
    )
    rejected = run("import-user-pfx", "--folder", str(bad_manifest))
    assert rejected.returncode == 3
    assert "pw" not in rejected.stderr.replace("pfx", "")


def test_new_user_pfx_builds_a_folder_that_a_dry_run_checks_and_keys_go_in_and_out(
    live_server: Any, celery_worker: Any, intune_admin: User, api_as: Callable[..., ApiClient], tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    add_key()
    directory_user(BOB)
    env = _env(live_server, api_as(intune_admin).secret, tmp_path)

    def run(*args: str, stdin: str | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [env["PFX"], *args],
            env={**env, **extra},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    source = tmp_path / "bob.pfx"
    source.write_bytes(pfx_for(BOB, "Bob-Pass-9"))
    folder = tmp_path / "batch"
    built = run(
        "new-user-pfx",
        str(source),
        "--folder",
        str(folder),
        "--upn",
        BOB,
        "--password-stdin",
        stdin="Bob-Pass-9\n",
    )
    assert built.returncode == 0, built.stderr
    assert (folder / "manifest.csv").stat().st_mode & 0o077 == 0
    checked = run("import-user-pfx", "--folder", str(folder), "--dry-run", "--json")
    assert checked.returncode == 0, checked.stderr
    assert [r["state"] for r in json.loads(checked.stdout)["rows"]] == ["validated"]
    assert not Certificate.objects.filter(upn=BOB).exists()

    pem = tmp_path / "connector2.pem"
    pem.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    added = run("add-encryption-key", str(pem), "--key-name", "Second", "--json")
    assert added.returncode == 0, added.stderr
    code = json.loads(added.stdout)["code"]
    exported = tmp_path / "out.pem"
    assert run("export-public-key", "--code", code, "--out", str(exported)).returncode == 0
    assert exported.read_bytes().strip() == pem.read_bytes().strip()
    assert run("add-encryption-key", str(pem), "--key-name", "Third").returncode == 3

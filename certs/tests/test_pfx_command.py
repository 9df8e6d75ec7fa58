from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.core.management import call_command

from certs.pfx import rsa_public_blob
from certs.tests.conftest import PASSWORD, UPN, key_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def files(tmp_path, good_pfx):
    pfx = tmp_path / "alice.pfx"
    pfx.write_bytes(good_pfx)
    blob = tmp_path / "connector.blob"
    blob.write_bytes(rsa_public_blob(key_for("connector").public_key()))
    return pfx, blob


def run(*args: str, stdin: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "pfx", *args], cwd=ROOT, input=stdin, capture_output=True, text=True
    )


def test_inspect_prints_json_and_exits_0_for_a_good_file(files):
    done = run("inspect", str(files[0]), "--password-stdin", "--upn", UPN, "--json", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True
    assert PASSWORD not in done.stdout + done.stderr


def test_inspect_exits_1_with_problems_for_a_wrong_password(files):
    done = run("inspect", str(files[0]), "--password-stdin", "--json", stdin="nope\n")
    assert done.returncode == 1
    assert [p["code"] for p in json.loads(done.stdout)["problems"]] == ["wrong_password"]
    assert "nope" not in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_encrypt_prints_a_body_the_connector_can_use(files, good_pfx):
    pfx, blob = files
    done = run(
        "encrypt", str(pfx), "--upn", UPN, "--public-key", str(blob), "--provider", "Microsoft Software Key Storage Provider",
        "--key-name", "PFXEncryptionKey", "--purpose", "smimeEncryption", "--password-stdin",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)
    assert base64.b64decode(body["encryptedPfxBlob"]) == good_pfx
    sha512 = hashes.SHA512()
    oaep = padding.OAEP(mgf=padding.MGF1(sha512), algorithm=sha512, label=None)
    assert (
        key_for("connector").decrypt(base64.b64decode(body["encryptedPfxPassword"]), oaep)
        == PASSWORD.encode()
    )


def test_encrypt_reports_a_bad_key_file_as_a_problem(files, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    done = run(
        "encrypt", str(files[0]), "--upn", UPN, "--public-key", str(bad), "--provider", "p", "--key-name", "k",
        "--password-stdin",
    )  # fmt: skip
    assert done.returncode == 1
    assert json.loads(done.stdout) == {"ok": False, "problems": [json.loads(done.stdout)["problems"][0]]}
    assert json.loads(done.stdout)["problems"][0]["code"] == "bad_public_key"


def test_call_command_reads_the_password_from_an_environment_variable(files, monkeypatch):
    monkeypatch.setenv("PFX_PASSWORD", PASSWORD)
    out = io.StringIO()
    call_command("pfx", "inspect", str(files[0]), "--password-env", "PFX_PASSWORD", "--json", stdout=out)
    assert json.loads(out.getvalue())["ok"] is True


def test_call_command_exits_1_on_a_refused_padding(files, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "pfx", "encrypt", str(files[0]), "--upn", UPN, "--public-key", str(files[1]), "--provider", "p",
            "--key-name", "k", "--padding", "pkcs1", "--password-stdin", stdout=out,
        )  # fmt: skip
    assert exited.value.code == 1
    assert json.loads(out.getvalue())["problems"][0]["code"] == "bad_padding"

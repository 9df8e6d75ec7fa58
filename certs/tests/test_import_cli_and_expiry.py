"""The command-line import, the Home expiry summary and the daily reminders."""

from __future__ import annotations

import io
import json
from argparse import ArgumentParser
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.template.loader import render_to_string
from django.utils import timezone

from certs import imports, lifecycle, reports
from certs.import_cli import add_import_arguments, run_import
from certs.models import Certificate, ExpiryReminder
from certs.tests.importing import add_key, directory_user, pfx_for
from portal.audit import Actor
from portal.models import ScopeTag

pytestmark = pytest.mark.django_db
ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"


def _options(*argv: str) -> dict[str, Any]:
    parser = ArgumentParser()
    add_import_arguments(parser)
    return vars(parser.parse_args(argv))


def _folder(tmp_path: Path) -> Path:
    tmp_path.mkdir()
    (tmp_path / "alice.pfx").write_bytes(pfx_for(ALICE, "pw-a"))
    (tmp_path / "bob.pfx").write_bytes(pfx_for(BOB, "pw-b"))
    return tmp_path


def test_the_command_imports_every_row_and_exits_zero(tmp_path: Path) -> None:
    directory_user(ALICE)
    directory_user(BOB)
    add_key()
    folder = _folder(tmp_path / "files")
    csv = tmp_path / "m.csv"
    csv.write_text(f"filename,upn,password,purpose\nalice.pfx,{ALICE},pw-a,smimeEncryption\nbob.pfx,,pw-b,\n")
    out, err = io.StringIO(), io.StringIO()
    code = run_import(_options("--manifest", str(csv), "--dir", str(folder), "--inline", "--json"), out, err)
    assert code == 0, err.getvalue()
    report = json.loads(out.getvalue())
    assert [r["state"] for r in report["rows"]] == ["stored", "stored"]
    assert Certificate.objects.count() == 2


def test_the_command_exits_one_when_a_row_fails(tmp_path: Path) -> None:
    directory_user(ALICE)
    directory_user(BOB)
    add_key()
    folder = _folder(tmp_path / "files")
    csv = tmp_path / "m.csv"
    csv.write_text(f"filename,upn,password\nalice.pfx,{ALICE},pw-a\nbob.pfx,{BOB},wrong\n")
    out, err = io.StringIO(), io.StringIO()
    assert run_import(_options("--manifest", str(csv), "--dir", str(folder), "--inline"), out, err) == 1
    assert "wrong_password" in out.getvalue()
    assert "stored=1" in out.getvalue() and "failed=1" in out.getvalue()


def test_the_command_refuses_a_bad_manifest_with_line_numbers_and_imports_nothing(tmp_path: Path) -> None:
    add_key()
    folder = _folder(tmp_path / "files")
    csv = tmp_path / "m.csv"
    csv.write_text("filename,upn,password\nalice.pfx,ghost@contoso.example,pw\n")
    out, err = io.StringIO(), io.StringIO()
    assert run_import(_options("--manifest", str(csv), "--dir", str(folder), "--inline"), out, err) == 2
    assert "line 2" in err.getvalue() and "unknown_upn" in err.getvalue()
    assert "file_without_row" in err.getvalue()
    assert not Certificate.objects.exists()


def test_a_dry_run_from_the_command_stores_nothing(tmp_path: Path) -> None:
    directory_user(ALICE)
    add_key()
    (tmp_path / "alice.pfx").write_bytes(pfx_for(ALICE, "pw-a"))
    csv = tmp_path / "m.csv"
    csv.write_text(f"filename,upn,password\nalice.pfx,{ALICE},pw-a\n")
    args = _options("--manifest", str(csv), "--dir", str(tmp_path), "--inline", "--dry-run")
    assert run_import(args, io.StringIO(), io.StringIO()) == 0
    assert not Certificate.objects.exists()


def _cert(days: float, kind: str) -> Certificate:
    directory_user(ALICE)
    key = add_key(kind)
    item = lifecycle.certificate_import(
        Actor.system(),
        entry=imports.Entry(f"{kind}.pfx", pfx_for(ALICE, "pw", kind=kind), "pw", ALICE),
        key=key,
        tags=[ScopeTag.default()],
    )
    assert item.certificate is not None
    Certificate.objects.filter(pk=item.certificate.pk).update(not_after=timezone.now() + timedelta(days=days))
    return Certificate.objects.get(pk=item.certificate.pk)


def test_home_counts_certificates_expiring_in_7_30_and_60_days(intune_admin: Any) -> None:
    _cert(5, "k1")
    summary = reports.expiry_summary(intune_admin)
    assert summary is not None
    assert [w["count"] for w in summary["windows"]] == [1, 1, 1]
    assert sum(m["count"] for m in summary["months"]) == 1
    html = render_to_string("certs/_home_expiry.html", {"expiry": summary})
    assert "Expiring in 7 days" in html


def test_home_hides_the_summary_from_admins_who_cannot_read_certificates(make_admin: Any) -> None:
    assert reports.expiry_summary(make_admin("intune_role_administrator")) is None


def test_each_reminder_is_sent_once_at_the_nearest_threshold(settings: Any) -> None:
    settings.PORTAL_EXPIRY_RECIPIENTS = ["pki-team@contoso.example"]
    cert = _cert(6.5, "k2")
    assert reports.send_expiry_reminders() == 1
    assert reports.send_expiry_reminders() == 0
    assert list(ExpiryReminder.objects.values_list("days", flat=True)) == [7]
    assert len(mail.outbox) == 1 and cert.thumbprint in mail.outbox[0].body
    Certificate.objects.filter(pk=cert.pk).update(not_after=timezone.now() + timedelta(hours=20))
    assert reports.send_expiry_reminders() == 1
    assert sorted(ExpiryReminder.objects.values_list("days", flat=True)) == [1, 7]

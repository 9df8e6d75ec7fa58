from __future__ import annotations

import io
import shlex

import pytest
from django.core.management import call_command

from connectors.models import EnrollmentToken

pytestmark = pytest.mark.django_db


def test_the_demo_token_command_prints_a_run_connector_argv_with_a_fresh_token(tmp_path):
    out = io.StringIO()
    call_command(
        "connector_demo_token", "--state-dir", str(tmp_path), "--server", "http://127.0.0.1:8000", stdout=out
    )
    argv = shlex.split(out.getvalue())
    assert argv[1:3] == ["manage.py", "run_connector"] and argv[argv.index("--state-dir") + 1] == str(
        tmp_path
    )
    assert argv[argv.index("--enroll") + 1].startswith("pfxe_") and EnrollmentToken.objects.count() == 1


def test_an_enrolled_demo_connector_starts_again_without_a_token(tmp_path):
    (tmp_path / "credential.json").write_text("{}")
    out = io.StringIO()
    call_command("connector_demo_token", "--state-dir", str(tmp_path), stdout=out)
    assert "--enroll" not in out.getvalue() and not EnrollmentToken.objects.exists()

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from allauth.mfa.totp.internal.auth import validate_totp_code
from django.core.management import CommandError, call_command

from devtools.admins import DEMO_TOTP_SECRET
from devtools.management.commands import demo


@pytest.mark.django_db
def test_demo_totp_prints_a_code_the_demo_authenticator_accepts() -> None:
    out = StringIO()
    call_command("demo_totp", stdout=out)
    assert validate_totp_code(DEMO_TOTP_SECRET, out.getvalue().strip())


@pytest.mark.django_db
def test_the_demo_is_refused_in_production_before_it_migrates_or_starts_anything(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PRODUCTION = True
    called: list[str] = []
    monkeypatch.setattr(demo, "call_command", lambda name, *a, **k: called.append(name))
    monkeypatch.setattr("subprocess.Popen", lambda *a, **k: called.append("Popen"))
    with pytest.raises(CommandError, match="The demo is refused with PORTAL_ENV=production"):
        call_command("demo", "--port", "0")
    assert called == []


def _demo(**options: object) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The demo's processes (name: argv) and their environment, for these command-line options."""
    from devtools.management.commands.demo import Command, log_level

    command = Command()
    command.log_level = log_level(options)
    processes = command.processes(host="127.0.0.1", port=8000, graph_port=8443, concurrency=2)
    return {p.name: p.argv for p in processes}, command.child_env()


def test_the_demo_runs_its_processes_at_warning_unless_asked_for_more() -> None:
    argv, env = _demo()
    assert env["LOG_LEVEL"] == "WARNING"
    for name in ("worker", "beat"):
        assert argv[name][argv[name].index("--loglevel") + 1] == "WARNING"
        assert "-q" in argv[name]  # no Celery banner between the sign-in table and the prompt

    argv, env = _demo(verbose=True)
    assert env["LOG_LEVEL"] == "INFO" and "INFO" in argv["worker"]
    argv, env = _demo(verbose=True, log_level="DEBUG")
    assert env["LOG_LEVEL"] == "DEBUG" and "DEBUG" in argv["beat"]


def test_the_demo_accepts_its_log_level_options() -> None:
    from devtools.management.commands.demo import Command

    parser = Command().create_parser("manage.py", "demo")
    assert parser.parse_args(["--log-level", "info"]).log_level == "INFO"
    assert parser.parse_args(["--verbose"]).verbose is True
    with pytest.raises(CommandError):
        parser.parse_args(["--log-level", "chatty"])

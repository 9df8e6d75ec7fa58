from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from allauth.mfa.totp.internal.auth import validate_totp_code
from django.core.management import CommandError, call_command

from directory.demo import DEMO_TOTP_SECRET
from portal.management.commands import demo


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

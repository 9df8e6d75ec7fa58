from __future__ import annotations

from io import StringIO

import pytest
from allauth.mfa.totp.internal.auth import validate_totp_code
from django.core.management import call_command

from directory.demo import DEMO_TOTP_SECRET


@pytest.mark.django_db
def test_demo_totp_prints_a_code_the_demo_authenticator_accepts() -> None:
    out = StringIO()
    call_command("demo_totp", stdout=out)
    assert validate_totp_code(DEMO_TOTP_SECRET, out.getvalue().strip())

from __future__ import annotations

import io

import pytest
from allauth.mfa.models import Authenticator
from django.core.management import CommandError, call_command

from devtools.admins import DEMO_PASSWORD, DEMO_TOTP_SECRET, demo_sign_ins
from devtools.tenant import seed
from directory.models import Device, DirectoryUser, Group, GroupDeviceMember, GroupUserMember, Platform
from portal import access
from portal.lib.refusal import Refused
from portal.models import AuditEvent, RoleAssignment, ScopeTag, User

pytestmark = pytest.mark.django_db


def _counts() -> dict[str, int]:
    models = (
        DirectoryUser,
        Group,
        Device,
        GroupUserMember,
        GroupDeviceMember,
        User,
        ScopeTag,
        RoleAssignment,
        Authenticator,
        AuditEvent,
    )
    return {m.__name__: m.objects.count() for m in models}


def test_seed_demo_builds_a_realistic_tenant_and_running_it_again_changes_nothing(built_in_roles) -> None:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    first = _counts()
    assert 300 <= first["DirectoryUser"] <= 400
    assert 20 <= first["Group"] <= 60
    assert set(Device.objects.values_list("platform", flat=True)) == set(Platform.values)
    assert DirectoryUser.objects.filter(upn__contains="'").exists()
    assert DirectoryUser.objects.filter(upn__contains="#EXT#").exists()
    assert Group.objects.filter(kind="device").exists() and Group.objects.filter(kind="user").exists()
    assert Group.objects.filter(user_members__isnull=True, device_members__isnull=True).exists()
    assert Device.objects.exclude(os_edition="").filter(platform=Platform.WINDOWS).exists()
    assert set(ScopeTag.objects.values_list("name", flat=True)) >= {"Default", "Europe", "North America"}
    assert set(DirectoryUser.objects.values_list("source", flat=True)) == {"demo"}

    call_command("seed_demo", stdout=io.StringIO())
    assert _counts() == first
    assert "admin@contoso.com" in out.getvalue()


def test_every_demo_sign_in_works_and_holds_its_role(built_in_roles, client, settings) -> None:
    settings.PORTAL_TENANT_DOMAIN = "contoso.com"
    call_command("seed_demo", verbosity=0)
    sign_ins = demo_sign_ins()
    roles = {role.name for role in built_in_roles.values()}
    assert {role.split(" (")[0] for _, _, role in sign_ins} == roles
    admins = User.objects.filter(email__in=[email for email, _, _ in sign_ins])
    assert admins[0].check_password(DEMO_PASSWORD)
    # One hash for the one demo password (hashing is slow on purpose); checked once above.
    assert {admin.password for admin in admins} == {admins[0].password}
    for email, password, role in sign_ins:
        assert password == DEMO_PASSWORD
        user = User.objects.get(email=email)
        assert role.split(" (")[0] in {a.role.name for a in RoleAssignment.objects.filter(members=user)}
        # Admins whose role needs MFA already have the demo authenticator, so the portal lets them in.
        assert Authenticator.objects.filter(user=user).exists() == access.requires_mfa(user)


def test_a_scoped_demo_admin_has_the_scope_tag(built_in_roles) -> None:
    call_command("seed_demo", verbosity=0)
    assignment = RoleAssignment.objects.get(members__email="helpdesk.eu@contoso.com")
    assert [t.name for t in assignment.scope_tags.all()] == ["Europe"]


def test_the_demo_intune_administrator_signs_in_with_the_printed_totp_secret(
    built_in_roles, client, settings
) -> None:
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value, yield_hotp_counters_from_time

    settings.PORTAL_ENFORCE_MFA = True
    call_command("seed_demo", verbosity=0)
    response = client.post("/accounts/login/", {"login": "admin@contoso.com", "password": DEMO_PASSWORD})
    assert response.status_code == 302 and "/2fa/" in response["Location"]
    counters = list(yield_hotp_counters_from_time())  # now, with allauth's tolerance either side
    counter = counters[len(counters) // 2]
    code = format_hotp_value(hotp_value(DEMO_TOTP_SECRET, counter))
    response = client.post(response["Location"], {"code": code})
    assert response.status_code == 302
    assert client.get("/users/").status_code == 200


def test_seed_demo_is_refused_in_production_and_creates_nothing(built_in_roles, settings) -> None:
    settings.PRODUCTION = True
    before = _counts()
    with pytest.raises(CommandError, match="seed_demo is refused with PORTAL_ENV=production") as refused:
        call_command("seed_demo", stdout=io.StringIO())
    assert "docker-compose.demo.yml" in str(refused.value)
    with pytest.raises(Refused) as refused_seed:
        seed()
    assert refused_seed.value.code == "demo_in_production"
    assert _counts() == before
    assert not User.objects.filter(email__in=[email for email, _, _ in demo_sign_ins()]).exists()

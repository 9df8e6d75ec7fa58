"""The demo administrators: one for every built-in role, with a published password and TOTP secret."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings

DEMO_PASSWORD = "Contoso-Demo-2026!"
# Base32, 24 characters: type it into any authenticator app (TOTP, SHA-1, 6 digits, 30 s).
DEMO_TOTP_SECRET = "CONTOSODEMOTOTPSECRET234"


def domain() -> str:
    return settings.PORTAL_TENANT_DOMAIN.lower()


class DemoSignIn(NamedTuple):
    email: str
    password: str
    role: str


@dataclass(frozen=True)
class DemoAdmin:
    local_part: str
    display_name: str
    role_key: str
    tags: tuple[str, ...] = ()


DEMO_ADMINS: tuple[DemoAdmin, ...] = (
    DemoAdmin("admin", "Avery Admin", "intune_administrator"),
    DemoAdmin("profiles", "Pat Profiles", "policy_and_profile_manager"),
    DemoAdmin(
        "profiles.na", "Noor Profiles (North America)", "policy_and_profile_manager", ("North America",)
    ),
    DemoAdmin("helpdesk", "Harper Helpdesk", "help_desk_operator"),
    DemoAdmin("helpdesk.eu", "Elif Helpdesk (Europe)", "help_desk_operator", ("Europe",)),
    DemoAdmin("readonly", "Robin Readonly", "read_only_operator"),
    DemoAdmin("roles", "Rowan Roles", "intune_role_administrator"),
)
SCOPE_TAGS = {
    "Europe": "Objects managed by the European service desk.",
    "North America": "Objects managed by the North American service desk.",
}


def demo_sign_ins() -> list[DemoSignIn]:
    """The demo admins' e-mail, password and role, in the order the run command prints them."""
    from portal.rbac import BUILT_IN_ROLES

    names = {role.key: role.name for role in BUILT_IN_ROLES}
    result = []
    for admin in DEMO_ADMINS:
        role = names[admin.role_key] + (f" ({', '.join(admin.tags)})" if admin.tags else "")
        result.append(DemoSignIn(f"{admin.local_part}@{domain()}", DEMO_PASSWORD, role))
    return result


def mfa_required_emails() -> set[str]:
    from portal.rbac import BUILT_IN_ROLES

    keys = {role.key for role in BUILT_IN_ROLES if role.requires_mfa}
    return {f"{a.local_part}@{domain()}" for a in DEMO_ADMINS if a.role_key in keys}

"""Built-in roles gain ``profiles.resend``: the Help Desk Operator resends a user's certificates to a device."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def sync_built_in_roles(apps: Any, schema_editor: Any) -> None:
    from portal.rbac import BUILT_IN_ROLES

    Role = apps.get_model("portal", "Role")
    for spec in BUILT_IN_ROLES:
        Role.objects.filter(key=spec.key, is_built_in=True).update(
            description=spec.description, permissions=list(spec.permissions)
        )


class Migration(migrations.Migration):
    dependencies = [("portal", "0004_audit_purge_guard")]

    operations = [migrations.RunPython(sync_built_in_roles, migrations.RunPython.noop)]

from __future__ import annotations

from typing import Any

from django.db import migrations


def sync_built_in_roles(apps: Any, schema_editor: Any) -> None:
    from portal.rbac import BUILT_IN_ROLES

    Role = apps.get_model("portal", "Role")
    ScopeTag = apps.get_model("portal", "ScopeTag")
    for spec in BUILT_IN_ROLES:
        Role.objects.update_or_create(
            key=spec.key,
            defaults={
                "name": spec.name,
                "description": spec.description,
                "permissions": list(spec.permissions),
                "requires_mfa": spec.requires_mfa,
                "is_built_in": True,
            },
        )
    if not ScopeTag.objects.filter(is_default=True).exists():
        ScopeTag.objects.create(
            name="Default", description="Given to objects with no other tag.", is_default=True
        )


# The audit log is append-only at the database too, so no code path (not even a
# raw query) can rewrite history. SQLite's test flush deletes rows, so there
# only updates are refused.
PG_GUARD = """
CREATE OR REPLACE FUNCTION portal_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER portal_auditevent_no_update BEFORE UPDATE ON portal_auditevent
    FOR EACH ROW EXECUTE FUNCTION portal_audit_append_only();
CREATE TRIGGER portal_auditevent_no_delete BEFORE DELETE ON portal_auditevent
    FOR EACH ROW EXECUTE FUNCTION portal_audit_append_only();
"""
PG_UNGUARD = """
DROP TRIGGER IF EXISTS portal_auditevent_no_update ON portal_auditevent;
DROP TRIGGER IF EXISTS portal_auditevent_no_delete ON portal_auditevent;
DROP FUNCTION IF EXISTS portal_audit_append_only();
"""
SQLITE_GUARD = """
CREATE TRIGGER portal_auditevent_no_update BEFORE UPDATE ON portal_auditevent
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
"""
SQLITE_UNGUARD = "DROP TRIGGER IF EXISTS portal_auditevent_no_update;"


def guard(apps: Any, schema_editor: Any) -> None:
    sql = PG_GUARD if schema_editor.connection.vendor == "postgresql" else SQLITE_GUARD
    schema_editor.execute(sql)


def unguard(apps: Any, schema_editor: Any) -> None:
    sql = PG_UNGUARD if schema_editor.connection.vendor == "postgresql" else SQLITE_UNGUARD
    schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("portal", "0001_initial")]

    operations = [
        migrations.RunPython(sync_built_in_roles, migrations.RunPython.noop),
        migrations.RunPython(guard, unguard),
    ]

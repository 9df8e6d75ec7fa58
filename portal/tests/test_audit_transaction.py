"""Audit rows share the change's transaction, and nobody can rewrite them.

These tests use real transactions (``transaction=True``), so each service's
``atomic`` block is the outermost one and a rollback is a real rollback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.db import DatabaseError, IntegrityError, connection, models, transaction

from portal import audit, services
from portal.audit import Actor
from portal.models import AuditEvent, Role, RoleAssignment, ScopeTag, User

TAKEN = "Taken"


def _state() -> tuple[Any, ...]:
    """Everything the Roles services can change."""
    return (
        sorted(Role.objects.values_list("name", "description", "permissions")),
        sorted(RoleAssignment.objects.values_list("name", "description")),
        sorted(RoleAssignment.members.through.objects.values_list("roleassignment_id", "user_id")),
        sorted(RoleAssignment.scope_tags.through.objects.values_list("roleassignment_id", "scopetag_id")),
        sorted(ScopeTag.objects.values_list("name", "description")),
        sorted(User.objects.values_list("email", flat=True)),
    )


@pytest.fixture
def setup(built_in_roles: dict[str, Role]) -> dict[str, Any]:
    actor = Actor.system()
    custom = services.role_create(actor=actor, name="Auditors", permissions=["audit.read"])
    spare = services.role_create(actor=actor, name="Spare", permissions=["audit.read"])
    tag = services.scope_tag_create(actor=actor, name="Paris")
    assignment = services.assignment_create(actor=actor, role=custom, name="Team")
    ScopeTag.objects.create(name=TAKEN)
    return {"actor": actor, "custom": custom, "spare": spare, "tag": tag, "assignment": assignment}


CHANGES: dict[str, Callable[[dict[str, Any]], object]] = {
    "role_create": lambda s: services.role_create(actor=s["actor"], name="New", permissions=["audit.read"]),
    "role_update": lambda s: services.role_update(
        actor=s["actor"],
        role=s["custom"],
        name="Renamed",
        description="x",
        permissions=["roles.read"],
        requires_mfa=True,
    ),
    "role_delete": lambda s: services.role_delete(actor=s["actor"], role=s["spare"]),
    "assignment_create": lambda s: services.assignment_create(
        actor=s["actor"], role=s["custom"], name="Other", scope_tags=[s["tag"]]
    ),
    "assignment_update": lambda s: services.assignment_update(
        actor=s["actor"],
        assignment=s["assignment"],
        name="Renamed",
        description="",
        members=[],
        scope_tags=[s["tag"]],
    ),
    "assignment_delete": lambda s: services.assignment_delete(actor=s["actor"], assignment=s["assignment"]),
    "scope_tag_create": lambda s: services.scope_tag_create(actor=s["actor"], name="Oslo"),
    "scope_tag_update": lambda s: services.scope_tag_update(
        actor=s["actor"], tag=s["tag"], name="Lyon", description=""
    ),
    "scope_tag_delete": lambda s: services.scope_tag_delete(actor=s["actor"], tag=s["tag"]),
    "admin_invite": lambda s: services.admin_invite(actor=s["actor"], email="ann@contoso.example"),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_that_fails_after_its_audit_row_leaves_neither(
    change: str, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    before, events_before = _state(), AuditEvent.objects.count()
    written: list[int] = []
    real_record = audit.record

    def record_then_fail(*args: Any, **kwargs: Any) -> AuditEvent:
        event = real_record(*args, **kwargs)
        written.append(event.pk)
        # The change and its audit row are both in the database now; then the database
        # itself refuses a statement in the same transaction (a duplicate unique name).
        ScopeTag.objects.create(name=TAKEN)
        return event

    monkeypatch.setattr(audit, "record", record_then_fail)
    with pytest.raises(IntegrityError):
        CHANGES[change](setup)
    assert written, "the audit row was written before the failure"
    assert not AuditEvent.objects.filter(pk__in=written).exists()
    assert AuditEvent.objects.count() == events_before
    assert _state() == before
    assert mail.outbox == []  # the invitation mail goes only after a commit


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_that_succeeds_commits_with_its_audit_row(change: str, setup: dict[str, Any]) -> None:
    before, events_before = _state(), AuditEvent.objects.count()
    CHANGES[change](setup)
    assert _state() != before
    assert AuditEvent.objects.count() == events_before + 1


@pytest.mark.django_db(transaction=True)
def test_a_refused_change_writes_no_audit_row(setup: dict[str, Any]) -> None:
    events_before = AuditEvent.objects.count()
    with pytest.raises(Exception, match="Default tag"):
        services.scope_tag_delete(actor=setup["actor"], tag=ScopeTag.default())
    assert AuditEvent.objects.count() == events_before


@pytest.mark.django_db(transaction=True)
def test_an_audit_row_cannot_be_written_outside_a_transaction(db: None) -> None:
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit.record(Actor.system(), activity="Stray", category="Role", operation="action", resources=[])
    assert not AuditEvent.objects.exists()


# --- Append-only ------------------------------------------------------------------------------


@pytest.fixture
def event(db: None) -> AuditEvent:
    with transaction.atomic():
        return audit.record(
            Actor.system(),
            activity="Create scope tag",
            category="Scope tag",
            operation="create",
            resources=[],
        )


def test_an_audit_event_cannot_be_saved_again_or_deleted(event: AuditEvent) -> None:
    event.activity = "Something else"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(activity="Rewritten")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).activity == "Create scope tag"


def test_the_database_refuses_a_raw_update(event: AuditEvent) -> None:
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE portal_auditevent SET activity = %s WHERE id = %s", ["Rewritten", event.pk])
    assert AuditEvent.objects.get(pk=event.pk).activity == "Create scope tag"


def test_the_database_refuses_a_raw_delete(event: AuditEvent) -> None:
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM portal_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_database_refuses_to_empty_the_audit_table(event: AuditEvent) -> None:
    # Each database's own way to empty a table at once (SQLite has no TRUNCATE).
    statement = (
        "TRUNCATE portal_auditevent" if connection.vendor == "postgresql" else "DELETE FROM portal_auditevent"
    )
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_an_orm_delete_that_bypasses_the_model_guard_is_refused_by_the_database(event: AuditEvent) -> None:
    rows = AuditEvent.objects.filter(pk=event.pk)
    with pytest.raises(DatabaseError), transaction.atomic():
        models.QuerySet.delete(rows)
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_rows_can_be_removed_only_while_the_purge_guard_holds_a_row(event: AuditEvent) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO portal_auditpurge DEFAULT VALUES")
        cursor.execute("DELETE FROM portal_auditevent WHERE id = %s", [event.pk])
        cursor.execute("DELETE FROM portal_auditpurge")
    assert not AuditEvent.objects.filter(pk=event.pk).exists()
    with transaction.atomic():
        second = audit.record(
            Actor.system(), activity="Again", category="Role", operation="create", resources=[]
        )
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM portal_auditevent WHERE id = %s", [second.pk])
    assert AuditEvent.objects.filter(pk=second.pk).exists()

"""Profiles in Intune: every change to a profile is written to its deviceConfiguration, exactly once
however often it is retried, paced by the write budget and read back; deletions follow.

Like certificate uploads (:mod:`graph.uploads`): a worker claims a record with a conditional UPDATE,
Graph calls happen outside any transaction, and the sweep hands records held by dead workers to the
queue again. Intune chooses a profile's id, so a POST whose answer was lost is found again by the
profile's name and type before anything is sent a second time.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from graph import intune_calls as calls
from graph.client import GraphClient, GraphError
from graph.connection import connected_client
from graph.models import ProfileRecord, TenantConnection
from graph.profile_records import (
    ProfileShapeError,
    assignment_keys,
    assignments_body,
    differences,
    profile_body,
)
from portal import audit
from portal.lib.refusal import Refused
from portal.models import AuditEvent, ScopeTag
from profiles.models import Profile

CATEGORY = "Device configuration"
WORKER = "Intune profile sync"
State = ProfileRecord.State


class RetryLater(Exception):
    """Throttling or an outage; the task tries again (and reads Intune before writing)."""


def queue(profile: Profile) -> ProfileRecord:
    """Mark ``profile`` as changed here; the task that sends it is queued when the transaction commits."""
    from graph import tasks

    record, _ = ProfileRecord.objects.get_or_create(
        profile=profile, defaults={"name": profile.name, "graph_type": profile.graph_type}
    )
    ProfileRecord.objects.filter(pk=record.pk).update(
        name=profile.name,
        graph_type=profile.graph_type,
        state=State.QUEUED,
        attempts=0,
        error={},
        queued_at=timezone.now(),
        revision=F("revision") + 1,
    )
    if TenantConnection.current() is not None:
        transaction.on_commit(lambda: tasks.push_profile.delay(record.pk))
    record.refresh_from_db()
    return record


def queue_delete(profile: Profile) -> ProfileRecord | None:
    """Call inside the transaction that deletes ``profile``: its deviceConfiguration is deleted after commit."""
    from graph import tasks

    record = ProfileRecord.objects.filter(profile=profile).first()
    if record is None:
        return None
    ProfileRecord.objects.filter(pk=record.pk).update(
        profile=None,
        state=State.DELETING,
        attempts=0,
        error={},
        queued_at=timezone.now(),
        revision=F("revision") + 1,
    )
    if TenantConnection.current() is not None:
        transaction.on_commit(lambda: tasks.delete_profile.delay(record.pk))
    return record


def _claim(record_id: int, states: tuple[str, ...]) -> tuple[uuid.UUID, int] | None:
    token = uuid.uuid4()
    won = ProfileRecord.objects.filter(pk=record_id, state__in=states, claim__isnull=True).update(
        claim=token, claimed_at=timezone.now()
    )
    if won != 1:
        return None
    return token, ProfileRecord.objects.values_list("revision", flat=True).get(pk=record_id)


def _release(record_id: int, token: uuid.UUID, **changes: Any) -> int:
    return ProfileRecord.objects.filter(pk=record_id, claim=token).update(
        claim=None, claimed_at=None, **changes
    )


def max_attempts() -> int:
    return int(settings.GRAPH_UPLOAD_MAX_ATTEMPTS)


def scope_tag_ids(client: GraphClient, tags: list[ScopeTag]) -> list[str]:
    """Intune's ids of the profile's scope tags, matched by name; a tag Intune lacks is created.

    Listed first every time: a creation whose answer was lost is found, not sent again.
    """
    known = {str(t.get("displayName", "")).lower(): str(t["id"]) for t in calls.role_scope_tags(client)}
    ids = []
    for tag in tags:
        found = known.get(tag.name.lower())
        if found is None:
            found = str(calls.create_role_scope_tag(client, tag.name, tag.description)["id"])
            known[tag.name.lower()] = found
        ids.append(found)
    return sorted(set(ids)) or ["0"]


def _find(client: GraphClient, record: ProfileRecord, name: str, graph_type: str) -> dict[str, Any] | None:
    """Intune's copy of the record: by id, else (a POST whose answer was lost) by name and type."""
    if record.graph_id:
        found = calls.get_configuration(client, record.graph_id)
        if found is not None:
            return found
    if record.create_sent_at is None and record.state != State.DELETING:
        return None  # Never POSTed: nothing of it can be in Intune.
    taken = set(
        ProfileRecord.objects.exclude(pk=record.pk).exclude(graph_id="").values_list("graph_id", flat=True)
    )
    for item in calls.list_configurations(client):
        if (
            str(item.get("displayName", "")).lower() == name.lower()
            and item.get("@odata.type") == f"#microsoft.graph.{graph_type}"
            and item.get("id") not in taken
        ):
            return calls.get_configuration(client, str(item["id"]))
    return None


def push(record_id: int, *, client: GraphClient | None = None) -> str:
    """Make Intune's copy of the profile what the portal has: create or patch, assign, read back."""
    claimed = _claim(record_id, (State.QUEUED,))
    if claimed is None:
        return "not-claimed"
    token, revision = claimed
    record = ProfileRecord.objects.get(pk=record_id)
    profile = (
        Profile.objects.filter(pk=record.profile_id).prefetch_related("scope_tags").first()
        if record.profile_id
        else None
    )
    if profile is None:
        # Deleted meanwhile: the deletion (a newer revision) goes next.
        _settle(record_id, token, revision, state=State.FAILED, error={"summary": "The profile was deleted."})
        return "gone"
    if TenantConnection.current() is None:
        _release(record_id, token)
        return "not-connected"
    try:
        client = client or connected_client()
        body = profile_body(profile, scope_tag_ids(client, list(profile.scope_tags.all())))
        wanted = assignments_body(profile)
        existing = _find(client, record, profile.name, profile.graph_type)
        created = existing is None
        if existing is None:
            ProfileRecord.objects.filter(pk=record_id, claim=token).update(create_sent_at=timezone.now())
            existing = calls.create_configuration(client, body)
        graph_id = str(existing["id"])
        # Kept at once: a retry after this point patches the same configuration.
        ProfileRecord.objects.filter(pk=record_id, claim=token).update(graph_id=graph_id)
        if not created and differences(body, existing, [], []):
            calls.update_configuration(client, graph_id, body)
        # A configuration just created has no assignments yet: no need to ask.
        current = [] if created else calls.list_assignments(client, graph_id)
        if assignment_keys(current) != assignment_keys(wanted):
            calls.assign(client, graph_id, wanted)
        back = calls.get_configuration(client, graph_id) or {}
        problems = differences(body, back, wanted, calls.list_assignments(client, graph_id))
        if problems:
            raise GraphError(
                "Read-back does not match: "
                + "; ".join(f"{p['field']} is {p['intune']!r}" for p in problems),
                status=400,
            )
    except (ProfileShapeError, Refused) as exc:
        return _fail(record, token, revision, {"summary": str(exc)})
    except GraphError as exc:
        attempts = record.attempts + 1
        error = exc.to_json() | {"summary": exc.summary()}
        if exc.retryable and attempts < max_attempts():
            if not _settle(record_id, token, revision, attempts=attempts, error=error):
                return "changed-meanwhile"
            raise RetryLater(exc.summary()) from exc
        return _fail(record, token, revision, error)
    with transaction.atomic():
        done = _settle(
            record_id,
            token,
            revision,
            state=State.SYNCED,
            synced_at=timezone.now(),
            error={},
            read_back=back,
            attempts=record.attempts + 1,
        )
        if not done:
            return "changed-meanwhile"
        _audit(
            profile.name,
            graph_id,
            "Write profile to Intune",
            AuditEvent.Operation.UPDATE,
            AuditEvent.Result.SUCCESS,
        )
    return "synced"


def _settle(record_id: int, token: uuid.UUID, revision: int, **changes: Any) -> bool:
    """Release the claim with ``changes`` if the profile is still at ``revision``. If it was changed or
    deleted in the portal meanwhile, only release it: the newer work is queued and ``False`` returned."""
    if ProfileRecord.objects.filter(pk=record_id, claim=token, revision=revision).update(
        claim=None, claimed_at=None, **changes
    ):
        return True
    _release(record_id, token)
    transaction.on_commit(lambda: _requeue(record_id))
    return False


def _requeue(record_id: int) -> None:
    from graph import tasks

    state = ProfileRecord.objects.filter(pk=record_id).values_list("state", flat=True).first()
    if state == State.QUEUED:
        tasks.push_profile.delay(record_id)
    elif state == State.DELETING:
        tasks.delete_profile.delay(record_id)


def _fail(record: ProfileRecord, token: uuid.UUID, revision: int, error: dict[str, Any]) -> str:
    with transaction.atomic():
        if not _settle(
            record.pk, token, revision, state=State.FAILED, attempts=record.attempts + 1, error=error
        ):
            return "changed-meanwhile"
        _audit(
            record.name,
            record.graph_id,
            "Write profile to Intune",
            AuditEvent.Operation.UPDATE,
            AuditEvent.Result.FAILURE,
            error.get("summary", ""),
        )
    return "failed"


def delete(record_id: int, *, client: GraphClient | None = None) -> str:
    """Delete the profile's deviceConfiguration and read back until it is gone."""
    claimed = _claim(record_id, (State.DELETING,))
    if claimed is None:
        return "not-claimed"
    token, _ = claimed
    record = ProfileRecord.objects.get(pk=record_id)
    try:
        client = client or connected_client()
        existing = _find(client, record, record.name, record.graph_type)
        if existing is not None and not calls.delete_configuration(client, str(existing["id"])):
            raise GraphError(f"Intune still lists {existing['id']} after deleting it", status=503)
    except (GraphError, Refused) as exc:
        attempts = record.attempts + 1
        error = (
            exc.to_json() | {"summary": exc.summary()}
            if isinstance(exc, GraphError)
            else {"summary": str(exc)}
        )
        if isinstance(exc, GraphError) and exc.retryable and attempts < max_attempts():
            _release(record_id, token, attempts=attempts, error=error)
            raise RetryLater(error["summary"]) from exc
        with transaction.atomic():
            _release(record_id, token, state=State.DELETE_FAILED, attempts=attempts, error=error)
            _audit(
                record.name,
                record.graph_id,
                "Delete profile from Intune",
                AuditEvent.Operation.DELETE,
                AuditEvent.Result.FAILURE,
                error["summary"],
            )
        return "failed"
    with transaction.atomic():
        _release(record_id, token, state=State.DELETED, error={}, attempts=record.attempts + 1)
        _audit(
            record.name,
            record.graph_id,
            "Delete profile from Intune",
            AuditEvent.Operation.DELETE,
            AuditEvent.Result.SUCCESS,
        )
    return "deleted"


def _audit(name: str, graph_id: str, activity: str, operation: str, result: str, detail: str = "") -> None:
    audit.record(
        audit.Actor.system(WORKER),
        activity=activity,
        category=CATEGORY,
        operation=operation,
        result=result,
        resources=[
            audit.resource(
                type="Intune device configuration",
                id=graph_id,
                name=name,
                scope=Profile,
                changes=[{"field": "error", "old": None, "new": detail}] if detail else [],
            )
        ],
    )


def not_in_intune(profiles: QuerySet[Profile]) -> QuerySet[Profile]:
    """Those of ``profiles`` Intune does not have: made before the tenant was connected, or failed."""
    return profiles.filter(Q(intune_record__isnull=True) | Q(intune_record__state=State.FAILED))


def send_outstanding(actor: audit.Actor, profiles: QuerySet[Profile]) -> int:
    """Queue every profile of ``profiles`` that is ``not_in_intune``; returns how many."""
    if TenantConnection.current() is None:
        raise Refused("not_connected", "Connect the tenant first.")
    with transaction.atomic():
        queued = [queue(p) for p in not_in_intune(profiles)]
        if queued:
            audit.record(
                actor,
                activity="Send profiles to Intune",
                category=CATEGORY,
                operation=AuditEvent.Operation.ACTION,
                resources=[
                    audit.resource(type="Profiles", id="", name=f"{len(queued)} profile(s) not in Intune")
                ],
            )
    return len(queued)


def sweep(*, claimed_before: dt.datetime, queued_before: dt.datetime) -> int:
    """Hand profile work held by dead workers (or lost with its message) to the queue again."""
    from graph import tasks

    if TenantConnection.current() is None:
        return 0
    now = timezone.now()
    stalled = ProfileRecord.objects.filter(state__in=(State.QUEUED, State.DELETING)).filter(
        Q(claim__isnull=False, claimed_at__lt=claimed_before)
        | Q(claim__isnull=True, queued_at__lt=queued_before)
    )
    count = 0
    for record in stalled.only("pk", "state"):
        released = (
            ProfileRecord.objects.filter(pk=record.pk, state=record.state)
            .filter(Q(claim__isnull=True) | Q(claimed_at__lt=claimed_before))
            .update(claim=None, claimed_at=None, queued_at=now)
        )
        if released:
            count += 1
            (tasks.push_profile if record.state == State.QUEUED else tasks.delete_profile).delay(record.pk)
    return count

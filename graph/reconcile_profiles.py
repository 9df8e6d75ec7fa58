"""Reconcile for profiles: the portal's profiles against Intune's imported-PFX deviceConfigurations.

A profile changed in Intune (settings, scope tags, assignments), deleted there, or an imported-PFX
profile created there that the portal does not know, each becomes a finding with the same resolve
actions as certificates: send the portal's again, adopt Intune's, or delete it from Intune.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from graph import intune_calls as calls
from graph import profile_sync
from graph.client import GraphClient
from graph.models import ProfileRecord, ReconcileFinding, ReconcileRun
from graph.profile_records import ProfileShapeError, assignments_body, differences, profile_body
from portal import audit
from portal.lib.refusal import Refused
from portal.models import AuditEvent
from profiles.models import GRAPH_TYPES, Profile

Kind = ReconcileFinding.Kind
State = ProfileRecord.State
PROFILE_TYPES = {f"#microsoft.graph.{t}" for t in GRAPH_TYPES.values()}


def read_intune(client: GraphClient) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Intune's imported-PFX profiles by id (full entity plus ``assignments``), and its scope tag ids by name."""
    profiles: dict[str, dict[str, Any]] = {}
    for item in calls.list_configurations(client):
        if item.get("@odata.type") not in PROFILE_TYPES:
            continue
        full = calls.get_configuration(client, str(item["id"]))
        if full is not None:
            profiles[str(item["id"])] = full | {
                "assignments": calls.list_assignments(client, str(item["id"]))
            }
    tags = {str(t.get("displayName", "")).lower(): str(t["id"]) for t in calls.role_scope_tags(client)}
    return profiles, tags


def findings(
    reconcile_run: ReconcileRun, intune: dict[str, dict[str, Any]], tags: dict[str, str]
) -> tuple[list[ReconcileFinding], dict[str, int], list[int]]:
    """The findings, the counts, and the records found missing (to mark as not in Intune)."""
    found: list[ReconcileFinding] = []
    missing: list[int] = []
    matched = 0
    known: set[str] = set()
    records = ProfileRecord.objects.filter(state__in=[State.SYNCED, State.ADOPTED]).select_related("profile")
    for record in records:
        known.add(record.graph_id)
        if record.state == State.ADOPTED:
            continue
        copy = intune.get(record.graph_id)
        if copy is None:
            missing.append(record.pk)
            found.append(_finding(reconcile_run, Kind.MISSING, record, {}))
            continue
        profile = record.profile
        if profile is None:
            continue
        try:
            body = profile_body(
                profile,
                sorted({tags.get(t.name.lower(), f"(no tag {t.name})") for t in profile.scope_tags.all()}),
            )
        except ProfileShapeError:
            continue
        diffs = differences(body, copy, assignments_body(profile), copy.get("assignments") or [])
        if diffs:
            found.append(_finding(reconcile_run, Kind.MISMATCH, record, copy, diffs))
        else:
            matched += 1
    # Deletions and sends in flight are the sync's business, not drift.
    known |= set(ProfileRecord.objects.exclude(graph_id="").values_list("graph_id", flat=True))
    for gid, copy in intune.items():
        if gid not in known:
            found.append(_finding(reconcile_run, Kind.ONLY_IN_INTUNE, None, copy))
    if not intune and not known:
        return found, {}, missing  # No profiles on either side: nothing to report.
    counts = {
        "profiles_intune": len(intune),
        "profiles_matched": matched,
        "profiles_missing": sum(f.kind == Kind.MISSING for f in found),
        "profiles_only_in_intune": sum(f.kind == Kind.ONLY_IN_INTUNE for f in found),
        "profiles_mismatch": sum(f.kind == Kind.MISMATCH for f in found),
    }
    return found, counts, missing


def mark_missing(record_ids: list[int]) -> None:
    """The portal must not claim a profile is in Intune when it is not."""
    ProfileRecord.objects.filter(pk__in=record_ids, state=State.SYNCED).update(
        state=State.FAILED, graph_id="", error={"summary": "Missing in Intune (found by reconcile)"}
    )


def _finding(
    reconcile_run: ReconcileRun,
    kind: str,
    record: ProfileRecord | None,
    copy: dict[str, Any],
    diffs: list[dict[str, Any]] | None = None,
) -> ReconcileFinding:
    return ReconcileFinding(
        run=reconcile_run,
        kind=kind,
        subject=ReconcileFinding.Subject.PROFILE,
        profile_record=record,
        graph_id=record.graph_id if record else str(copy.get("id", "")),
        upn=(record.name if record else str(copy.get("displayName") or ""))[:255],
        differences=diffs or [],
        intune=copy,
    )


def resolve(actor: audit.Actor, finding: ReconcileFinding, action: str) -> str:
    """Send the portal's profile again, adopt Intune's, or delete Intune's; returns the resolution."""
    record = finding.profile_record
    if action == "reupload":
        profile = record.profile if record else None
        if profile is None:
            raise Refused("profile_gone", "The profile is no longer in the portal.")
        if finding.kind == Kind.MISSING and record is not None:
            ProfileRecord.objects.filter(pk=record.pk).update(graph_id="")
        profile_sync.queue(profile)
        resolution = ReconcileFinding.Resolution.REUPLOADED
    elif action == "adopt":
        ProfileRecord.objects.create(
            name=finding.upn,
            graph_type=str(finding.intune.get("@odata.type", "")).removeprefix("#microsoft.graph."),
            graph_id=finding.graph_id,
            state=State.ADOPTED,
        )
        resolution = ReconcileFinding.Resolution.ADOPTED
    else:
        gone = ProfileRecord.objects.create(
            name=finding.upn,
            graph_type=str(finding.intune.get("@odata.type", "")).removeprefix("#microsoft.graph."),
            graph_id=finding.graph_id,
            state=State.QUEUED,
        )
        ProfileRecord.objects.filter(pk=gone.pk).update(state=State.DELETING, revision=F("revision") + 1)
        transaction.on_commit(lambda: _delete(gone.pk))
        resolution = ReconcileFinding.Resolution.DELETED
    audit.record(
        actor,
        activity={
            "reupload": "Send profile to Intune again",
            "adopt": "Adopt Intune profile",
            "delete": "Delete profile from Intune",
        }[action],
        category=profile_sync.CATEGORY,
        operation=AuditEvent.Operation.DELETE if action == "delete" else AuditEvent.Operation.ACTION,
        resources=[
            audit.resource(
                type="Intune device configuration", id=finding.graph_id, name=finding.upn, scope=Profile
            )
        ],
    )
    finding.resolved_at = timezone.now()
    return str(resolution)


def _delete(record_id: int) -> None:
    from graph import tasks

    tasks.delete_profile.delay(record_id)

"""Compare every userPfxCertificate in Intune with the portal's certificates, and act on what differs."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from certs.models import Certificate, GraphState
from graph import connection, records, uploads
from graph import reconcile_profiles as profiles
from graph.client import GraphClient, GraphError
from graph.models import ReconcileFinding, ReconcileRun, UploadRecord
from portal import audit
from portal.lib import runs
from portal.lib.refusal import Refused
from portal.models import AuditEvent

log = logging.getLogger(__name__)
Kind = ReconcileFinding.Kind
Op = AuditEvent.Operation


RUNS = runs.RunKind(
    model=ReconcileRun,
    noun="Reconcile run",
    category=uploads.CERTIFICATE_CATEGORY,
    start_activity="Start Intune reconcile",
    finish_activity="Reconcile Intune certificates",
    finish_operation=Op.ACTION,
    worker="Intune reconcile",
)


def start(actor: audit.Actor) -> tuple[ReconcileRun, bool]:
    """An on-demand run: recorded now, carried out by a worker. While one runs, that one (and False)."""
    from graph import tasks

    return RUNS.start(actor, tasks.reconcile.delay)


def run(run_id: int | None = None, *, client: GraphClient | None = None) -> ReconcileRun:
    reconcile_run, go = RUNS.begin(run_id)
    if not go:
        return reconcile_run
    try:
        client = client or connection.connected_client()
        intune = {str(r.get("id", "")).lower(): r for r in client.list_pfx()}
        intune_profiles, tags = profiles.read_intune(client)
    except (GraphError, Refused) as exc:
        return RUNS.fail(reconcile_run, connection.failure(exc))
    return _compare(reconcile_run, intune, profiles.findings(reconcile_run, intune_profiles, tags))


def _compare(
    reconcile_run: ReconcileRun,
    intune: dict[str, dict[str, Any]],
    profile_part: tuple[list[ReconcileFinding], dict[str, int], list[int]] = ([], {}, []),
) -> ReconcileRun:
    profile_findings, profile_counts, profiles_missing = profile_part
    findings: list[ReconcileFinding] = []
    expected: set[str] = set()
    missing_ids: list[int] = []
    matched = not_uploaded = 0
    certificates = Certificate.objects.select_related("user", "encryption_key")
    for certificate in certificates.iterator(chunk_size=500):
        gid = records.graph_id(certificate)
        expected.add(gid)
        record = intune.get(gid)
        if record is None and certificate.graph_state != GraphState.SYNCED:
            # Known not to be there yet (never uploaded, queued or failed): the uploads page
            # lists these; reporting them as findings on every run would only bury real drift.
            not_uploaded += 1
            continue
        if record is None:
            missing_ids.append(certificate.pk)
            findings.append(_finding(reconcile_run, Kind.MISSING, gid, certificate))
            continue
        diffs = records.differences(certificate, record)
        if diffs:
            findings.append(_finding(reconcile_run, Kind.MISMATCH, gid, certificate, record, diffs))
        else:
            matched += 1
    adopted = set(
        UploadRecord.objects.filter(state=UploadRecord.State.ADOPTED).values_list("graph_id", flat=True)
    )
    for gid, record in intune.items():
        if gid not in expected and gid not in adopted:
            findings.append(_finding(reconcile_run, Kind.ONLY_IN_INTUNE, gid, None, record))
    counts = {
        "intune": len(intune),
        "portal": len(expected),
        "matched": matched,
        Kind.MISSING: sum(f.kind == Kind.MISSING for f in findings),
        Kind.ONLY_IN_INTUNE: sum(f.kind == Kind.ONLY_IN_INTUNE for f in findings),
        Kind.MISMATCH: sum(f.kind == Kind.MISMATCH for f in findings),
        "adopted": len(adopted & set(intune)),
        "not_uploaded": not_uploaded,
        **profile_counts,
    }
    with transaction.atomic():
        ReconcileFinding.objects.bulk_create(findings + profile_findings, batch_size=500)
        profiles.mark_missing(profiles_missing)
        # The portal must not claim a certificate is in Intune when it is not.
        Certificate.objects.filter(pk__in=missing_ids, graph_state=GraphState.SYNCED).update(
            graph_state=GraphState.NOT_UPLOADED, graph_error="Missing in Intune (found by reconcile)"
        )
        UploadRecord.objects.filter(certificate_id__in=missing_ids, state=UploadRecord.State.SYNCED).update(
            state=UploadRecord.State.FAILED, error={"summary": "Missing in Intune (found by reconcile)"}
        )
        return RUNS.finish(reconcile_run, counts)


def _finding(
    reconcile_run: ReconcileRun,
    kind: str,
    gid: str,
    certificate: Certificate | None,
    record: dict[str, Any] | None = None,
    diffs: list[dict[str, Any]] | None = None,
) -> ReconcileFinding:
    record = record or {}
    return ReconcileFinding(
        run=reconcile_run,
        kind=kind,
        graph_id=gid,
        certificate=certificate,
        upn=certificate.user.upn if certificate else str(record.get("userPrincipalName") or ""),
        thumbprint=certificate.thumbprint.lower()
        if certificate
        else str(record.get("thumbprint") or "")[:40],
        differences=diffs or [],
        intune={k: v for k, v in record.items() if k not in {"encryptedPfxBlob", "encryptedPfxPassword"}},
    )


ACTIONS = {
    Kind.MISSING: ("reupload",),
    Kind.MISMATCH: ("reupload",),
    Kind.ONLY_IN_INTUNE: ("adopt", "delete"),
}


def resolve(actor: audit.Actor, finding: ReconcileFinding, action: str) -> ReconcileFinding:
    """Upload again, adopt (keep Intune's record, stop reporting it) or delete it from Intune."""
    if finding.resolution or action not in ACTIONS[ReconcileFinding.Kind(finding.kind)]:
        raise Refused("finding_not_resolvable", f"Cannot {action} this finding.")
    if finding.subject == ReconcileFinding.Subject.PROFILE:
        with transaction.atomic():
            finding.resolution = profiles.resolve(actor, finding, action)
            finding.resolved_at = timezone.now()
            finding.resolved_by_name = actor.name
            finding.save(update_fields=["resolution", "resolved_at", "resolved_by_name"])
        return finding
    with transaction.atomic():
        if action == "reupload":
            if finding.certificate is None:
                raise Refused("certificate_gone", "The certificate is no longer in the portal.")
            uploads.queue_upload(finding.certificate)
            resolution = ReconcileFinding.Resolution.REUPLOADED
        elif action == "adopt":
            UploadRecord.objects.update_or_create(
                graph_id=finding.graph_id,
                defaults={
                    "upn": finding.upn,
                    "thumbprint": finding.thumbprint,
                    "state": UploadRecord.State.ADOPTED,
                },
            )
            resolution = ReconcileFinding.Resolution.ADOPTED
        else:
            uploads.queue_delete(finding.graph_id, upn=finding.upn, thumbprint=finding.thumbprint)
            resolution = ReconcileFinding.Resolution.DELETED
        finding.resolution = resolution
        finding.resolved_at = timezone.now()
        finding.resolved_by_name = actor.name
        finding.save(update_fields=["resolution", "resolved_at", "resolved_by_name"])
        audit.record(
            actor,
            activity={
                "reupload": "Upload certificate to Intune again",
                "adopt": "Adopt Intune certificate",
                "delete": "Delete certificate from Intune",
            }[action],
            category=uploads.CERTIFICATE_CATEGORY,
            operation=Op.DELETE if action == "delete" else Op.ACTION,
            resources=[
                audit.resource(
                    type="Intune certificate",
                    id=finding.graph_id,
                    name=f"{finding.upn} {finding.thumbprint[:12]}",
                    scope=finding.certificate or Certificate,
                )
            ],
        )
    return finding

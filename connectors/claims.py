"""Claiming connector jobs (re-wraps and device re-encryptions alike).

A connector claims jobs with one conditional UPDATE for a batch, so each job goes to one
connector. A claim older than the connector job timeout belongs to a connector that died and is
handed out again, until the job has used up its attempts; then the sweep fails it.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, Q, QuerySet

from connectors.models import Connector, ConnectorJob, claim_timeout

MAX_CLAIM = 50


def claimable(now: datetime) -> Q:
    """Queued jobs, and claims that lapsed with attempts left."""
    stale = now - claim_timeout()
    return Q(state=ConnectorJob.State.QUEUED) | Q(
        state=ConnectorJob.State.CLAIMED, claimed_at__lt=stale, attempts__lt=ConnectorJob.MAX_ATTEMPTS
    )


def claim(
    connector: Connector, candidates: QuerySet[ConnectorJob], *, limit: int, now: datetime
) -> list[ConnectorJob]:
    """Claim up to ``limit`` (at most ``MAX_CLAIM``) of ``candidates``, oldest first; the jobs won."""
    ids = list(
        candidates.filter(claimable(now)).order_by("id").values_list("pk", flat=True)[: min(limit, MAX_CLAIM)]
    )
    if not ids:
        return []
    # The claim condition is checked again row by row, so of two connectors racing for a job only
    # one update matches it; the claim time tells this call's winners apart.
    ConnectorJob.objects.filter(claimable(now), pk__in=ids).update(
        state=ConnectorJob.State.CLAIMED, claimed_by=connector, claimed_at=now, attempts=F("attempts") + 1
    )
    return list(ConnectorJob.objects.filter(pk__in=ids, claimed_by=connector, claimed_at=now))


def exhausted(kind: str, now: datetime) -> QuerySet[ConnectorJob]:
    """Jobs of ``kind`` whose last claim lapsed with no attempts left: nobody will finish them."""
    return ConnectorJob.objects.filter(
        kind=kind,
        state=ConnectorJob.State.CLAIMED,
        claimed_at__lt=now - claim_timeout(),
        attempts__gte=ConnectorJob.MAX_ATTEMPTS,
    )

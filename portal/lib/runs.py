"""Background runs (a directory sync, a reconcile): recorded when they start, carried out once by a
worker, one at a time, and closed as done with their counts or as failed with the error.

A kind of run is a concrete model of :class:`Run` and a :class:`RunKind` that names it in the audit log.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from portal import audit
from portal.models import AuditEvent

STALLED = {"summary": "The worker stopped before this run finished."}


class Run(models.Model):
    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Finished"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Scheduled"
        MANUAL = "manual", "On demand"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULE)
    started_by_name = models.CharField(max_length=254, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    error = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True
        ordering = ["-started_at"]

    def count(self, name: str) -> int:
        value: Any = self.counts.get(name, 0)
        return int(value)


@dataclass(frozen=True)
class RunKind[R: Run]:
    """One kind of run: its model, and how the audit log records its start and its end."""

    model: type[R]
    noun: str  # the audit log's resource type, e.g. "Directory sync"
    category: str
    start_activity: str
    finish_activity: str
    finish_operation: str
    worker: str  # the system actor that finishes a run

    def running(self) -> R | None:
        return self.model._default_manager.filter(state=Run.State.RUNNING).order_by("-started_at").first()

    def start(self, actor: audit.Actor, enqueue: Callable[[int], object]) -> tuple[R, bool]:
        """Record an on-demand run and hand its id to ``enqueue`` once the transaction commits.

        Only one runs at a time: while another is running, that one is returned with ``False``
        and nothing is recorded (a second click queues no second run).
        """
        with transaction.atomic():
            current = self.running()
            if current is not None:
                return current, False
            run = self.model._default_manager.create(trigger=Run.Trigger.MANUAL, started_by_name=actor.name)
            audit.record(
                actor,
                activity=self.start_activity,
                category=self.category,
                operation=AuditEvent.Operation.ACTION,
                resources=[audit.resource(run, type=self.noun, id=str(run.code))],
            )
            transaction.on_commit(lambda: enqueue(run.pk))
        return run, True

    def begin(self, run_id: int | None) -> tuple[R, bool]:
        """The run a worker is asked to carry out, and whether to carry it out.

        With an id (a run ``start`` recorded): that run, to carry out only while it is running, so a
        task delivered twice does the work once. Without one (the schedule): a new run, unless
        another is running, which is returned instead.
        """
        if run_id is not None:
            run = self.model._default_manager.get(pk=run_id)
            return run, run.state == Run.State.RUNNING
        with transaction.atomic():
            current = self.running()
            if current is not None:
                return current, False
            return self.model._default_manager.create(
                trigger=Run.Trigger.SCHEDULE, started_by_name="schedule"
            ), True

    def fail(self, run: R, error: Mapping[str, Any]) -> R:
        self.model._default_manager.filter(pk=run.pk).update(
            state=Run.State.FAILED, finished_at=timezone.now(), error=dict(error)
        )
        run.refresh_from_db()
        return run

    def finish(
        self,
        run: R,
        counts: Mapping[str, int],
        *,
        now: dt.datetime | None = None,
        resources: Iterable[dict[str, Any]] = (),
    ) -> R:
        """Close ``run`` as done with ``counts``, recorded in the audit log with ``resources`` after the
        run itself. Called inside the transaction that wrote what the run changed, both land together."""
        with transaction.atomic():
            self.model._default_manager.filter(pk=run.pk).update(
                state=Run.State.DONE, finished_at=now or timezone.now(), counts=dict(counts)
            )
            audit.record(
                audit.Actor.system(self.worker),
                activity=self.finish_activity,
                category=self.category,
                operation=self.finish_operation,
                resources=[
                    audit.resource(
                        type=self.noun,
                        id=str(run.code),
                        name=str(run),
                        changes=[{"field": k, "old": None, "new": v} for k, v in counts.items()],
                    ),
                    *resources,
                ],
            )
        run.refresh_from_db()
        return run


def fail_stalled(model: type[Run], *, started_before: dt.datetime, now: dt.datetime | None = None) -> int:
    """Close the runs of ``model`` still running that started before ``started_before``: their worker
    died, and they would otherwise show "Running" for ever and keep the next run from starting."""
    return model._default_manager.filter(state=Run.State.RUNNING, started_at__lt=started_before).update(
        state=Run.State.FAILED, finished_at=now or timezone.now(), error=STALLED
    )

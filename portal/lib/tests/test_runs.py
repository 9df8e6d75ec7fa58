from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import isolate_apps
from django.utils import timezone

from portal.audit import Actor
from portal.lib import runs
from portal.models import AuditEvent

with isolate_apps("portal"):

    class Chore(runs.Run):
        """A kind of run that exists only for these tests."""

        class Meta(runs.Run.Meta):
            app_label = "portal"

        def __str__(self) -> str:
            return f"Chore {self.pk}"


CHORES = runs.RunKind(
    model=Chore,
    noun="Chore",
    category="Chores",
    start_activity="Start chore",
    finish_activity="Do chore",
    finish_operation=AuditEvent.Operation.UPDATE,
    worker="Chore worker",
)


@pytest.fixture(scope="module")
def chore_table(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock(), connection.schema_editor() as editor:
        editor.create_model(Chore)
    yield
    with django_db_blocker.unblock(), connection.schema_editor() as editor:
        editor.delete_model(Chore)


pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("chore_table")]


def _events(activity: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(activity=activity))


def test_a_run_started_on_demand_is_recorded_audited_and_queued_once_committed(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    queued: list[int] = []
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run, started = CHORES.start(Actor.system("Kari"), queued.append)
        assert queued == []
    for callback in callbacks:
        callback()
    assert started and queued == [run.pk]
    assert (run.state, run.trigger, run.started_by_name) == (
        Chore.State.RUNNING,
        Chore.Trigger.MANUAL,
        "Kari",
    )
    [event] = _events("Start chore")
    assert (event.category, event.actor_name) == ("Chores", "Kari")
    assert [(r["type"], r["id"]) for r in event.resources] == [("Chore", str(run.code))]


def test_a_second_start_while_a_run_is_running_returns_that_run_and_queues_nothing(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    queued: list[int] = []
    with django_capture_on_commit_callbacks(execute=True):
        first, _ = CHORES.start(Actor.system("Kari"), queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        again, started = CHORES.start(Actor.system("Lee"), queued.append)
    assert (again.pk, started) == (first.pk, False)
    assert Chore._default_manager.count() == 1 and queued == [first.pk]
    assert len(_events("Start chore")) == 1


def test_a_worker_carries_out_a_started_run_only_while_it_is_running() -> None:
    run, _ = CHORES.start(Actor.system("Kari"), lambda pk: None)
    assert CHORES.begin(run.pk) == (run, True)
    CHORES.finish(run, {"done": 1})
    again, go = CHORES.begin(run.pk)
    assert (again.pk, again.state, go) == (run.pk, Chore.State.DONE, False)


def test_the_schedule_starts_a_run_unless_one_is_running() -> None:
    scheduled, go = CHORES.begin(None)
    assert go and (scheduled.trigger, scheduled.started_by_name) == (Chore.Trigger.SCHEDULE, "schedule")
    assert CHORES.begin(None) == (scheduled, False)
    CHORES.fail(scheduled, {"summary": "Graph is down"})
    later, go = CHORES.begin(None)
    assert go and later.pk != scheduled.pk and Chore._default_manager.count() == 2


def test_a_finished_run_keeps_its_counts_and_is_audited_with_what_it_changed() -> None:
    run, _ = CHORES.begin(None)
    extra = {"type": "Thing", "id": "7", "name": "seven", "changes": []}
    done = CHORES.finish(run, {"things": 3, "others": 0}, resources=[extra])
    assert (done.state, done.counts, done.count("things")) == (
        Chore.State.DONE,
        {"things": 3, "others": 0},
        3,
    )
    assert done.finished_at is not None
    [event] = _events("Do chore")
    assert (event.actor_name, event.category, event.operation) == (
        "Chore worker",
        "Chores",
        AuditEvent.Operation.UPDATE,
    )
    first, second = event.resources
    assert (first["type"], first["id"], first["name"]) == ("Chore", str(run.code), str(run))
    assert first["changes"] == [
        {"field": "things", "old": None, "new": 3},
        {"field": "others", "old": None, "new": 0},
    ]
    assert second == extra


def test_a_finish_rolled_back_with_the_work_leaves_the_run_running_and_unaudited() -> None:
    run, _ = CHORES.begin(None)
    with pytest.raises(RuntimeError), transaction.atomic():
        CHORES.finish(run, {"things": 3})
        raise RuntimeError("the work failed after the finish was written")
    run.refresh_from_db()
    assert run.state == Chore.State.RUNNING and run.counts == {}
    assert _events("Do chore") == []


def test_a_failed_run_keeps_the_error() -> None:
    run, _ = CHORES.begin(None)
    failed = CHORES.fail(run, {"summary": "Graph is down", "status": 503})
    assert failed.state == Chore.State.FAILED and failed.finished_at is not None
    assert failed.error == {"summary": "Graph is down", "status": 503}


def test_runs_whose_worker_died_are_closed_and_no_longer_keep_the_next_from_starting() -> None:
    now = timezone.now()
    stuck = Chore._default_manager.create(started_at=now - dt.timedelta(hours=2))
    current = Chore._default_manager.create(started_at=now - dt.timedelta(minutes=1))
    assert runs.fail_stalled(Chore, started_before=now - dt.timedelta(minutes=10)) == 1
    stuck.refresh_from_db()
    current.refresh_from_db()
    assert stuck.state == Chore.State.FAILED and stuck.error == runs.STALLED
    assert current.state == Chore.State.RUNNING
    runs.fail_stalled(Chore, started_before=now)
    assert CHORES.begin(None)[1] is True

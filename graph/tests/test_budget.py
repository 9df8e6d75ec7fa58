from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from graph.budget import POLL, WriteBudget


def _spend(path: str, count: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    budget = WriteBudget(limit=5, window=0.5, path=Path(path))
    for _ in range(count):
        budget.acquire()
        out.put(time.time())


def test_writes_from_several_processes_never_exceed_the_limit_in_any_window(tmp_path: Path) -> None:
    spawn = multiprocessing.get_context("spawn")  # the test process runs threads: do not fork it
    out: multiprocessing.Queue = spawn.Queue()  # type: ignore[type-arg]
    workers = [spawn.Process(target=_spend, args=(str(tmp_path / "b.json"), 8, out)) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    starts = sorted(out.get() for _ in range(24))
    for i in range(len(starts) - 5):
        # Any six consecutive starts span about a window (less a little for process scheduling).
        assert starts[i + 5] - starts[i] >= 0.45


def test_a_pause_holds_every_write_until_it_ends(tmp_path: Path) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    budget = WriteBudget(limit=100, window=1.0, path=tmp_path / "b.json", sleep=sleep)
    WriteBudget(limit=100, window=1.0, path=tmp_path / "b.json").pause(0.2)
    budget.acquire()
    assert waits and 0 < waits[0] <= 0.2


def test_a_write_in_flight_keeps_its_place_until_its_answer_is_in(tmp_path: Path) -> None:
    first = WriteBudget(limit=1, window=0.2, path=tmp_path / "b.json")
    in_flight = first.slot()
    in_flight.__enter__()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            in_flight.__exit__(None, None, None)  # the answer arrives
        time.sleep(seconds)

    WriteBudget(limit=1, window=0.2, path=tmp_path / "b.json", sleep=sleep).acquire()
    assert waits[:3] == [POLL, POLL, POLL]  # polled while the first write was in flight
    assert len(waits) > 3  # then waited out the window after its answer

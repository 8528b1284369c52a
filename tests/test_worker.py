"""The one worker shape of nbtrack's threads: a stage that fails takes the process down (never a
silent death that leaves the stage before it blocked), flush() says what is pending, stop() is
bounded. End to end: a stage made to raise (test-only fault injection) ends the internal process,
and its successor recovers the run from the log; a thread of the user process made to raise ends
nothing there, and the run is given up with what it cost said."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

import nbtrack
from nbtrack import faults
from nbtrack.worker import Inbox, PipeSource, StageDied, Until, Worker
from tests.helpers import stored_history, stored_run


class Recorder(Worker[int]):
    """Handles ints; raises on 13; waits on a gate for 7."""

    def __init__(self, inbox: Inbox[int], fatal: list[tuple[str, BaseException]]) -> None:
        self.handled: list[int] = []
        self.gate = threading.Event()
        super().__init__("Recorder", inbox, lambda name, exc: fatal.append((name, exc)))

    def handle(self, item: int) -> None:
        if item == 13:
            raise ValueError("unlucky")
        if item == 7:
            self.gate.wait(10)
        self.handled.append(item)


def test_a_stage_that_raises_runs_the_fatal_callback_and_never_blocks_its_producer() -> None:
    fatal: list[tuple[str, BaseException]] = []
    inbox = Inbox[int](2)
    worker = Recorder(inbox, fatal)
    for item in (1, 2, 13):
        inbox.put(item)
    deadline = time.monotonic() + 5
    while not fatal and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(name, str(exc)) for name, exc in fatal] == [("Recorder", "unlucky")]
    assert worker.handled == [1, 2] and isinstance(worker.failed, ValueError)
    # A producer never waits for a stage that is gone, even with the inbox full.
    with pytest.raises(StageDied, match="unlucky"):
        for item in range(10):
            inbox.put(item)


def test_flush_returns_what_is_still_pending_and_stop_is_bounded() -> None:
    fatal: list[tuple[str, BaseException]] = []
    inbox = Inbox[int](10)
    worker = Recorder(inbox, fatal)
    for item in (1, 7, 8, 9):
        inbox.put(item)
    time.sleep(0.1)
    assert worker.flush(0.2) == 3  # 7 is being handled, 8 and 9 wait
    assert not worker.stop(0.2)  # still blocked on 7: stop() returns anyway
    worker.gate.set()
    assert worker.flush(5) == 0
    assert worker.handled == [1, 7, 8, 9] and not fatal


def test_a_worker_that_waits_gives_up_when_stop_says_so() -> None:
    class Waiter(Worker[int]):
        gave_up = False

        def handle(self, item: int) -> None:
            while not self.wait_or_stop(0.05):
                pass
            self.gave_up = True

    waiter = Waiter("Waiter", Inbox[int](1), lambda name, exc: None)
    waiter._inbox.put(1)  # type: ignore[attr-defined]
    time.sleep(0.1)
    started = time.monotonic()
    waiter.stop(0.5)  # its wait ends at the deadline; the thread ends right after it
    assert waiter.join(5.0) and waiter.gave_up
    assert time.monotonic() - started < 1.5


class Reader(Worker[bytes]):
    """Reads a pipe; counts its idle() calls; says how its source ended."""

    idle_seconds = 0.05

    def __init__(self, source: PipeSource) -> None:
        self.read: list[bytes] = []
        self.ended_by_eof: bool | None = None
        super().__init__("Reader", source, lambda name, exc: None)

    def handle(self, item: bytes) -> None:
        self.read.append(item)

    def finished(self) -> None:
        self.ended_by_eof = self._inbox.eof  # type: ignore[attr-defined]


def test_a_pipe_source_ends_at_eof_and_says_so_and_close_ends_it_without() -> None:
    receiving, sending = multiprocessing.Pipe(duplex=False)
    reader = Reader(PipeSource(receiving))
    for message in (b"a", b"b", b"c"):
        sending.send_bytes(message)
    sending.close()  # the other process is gone
    assert reader.join(5.0)
    assert reader.read == [b"a", b"b", b"c"] and reader.ended_by_eof is True

    receiving, sending = multiprocessing.Pipe(duplex=False)
    reader = Reader(PipeSource(receiving))
    assert reader.stop(5.0) and reader.ended_by_eof is False
    sending.send_bytes(b"still open")  # close() leaves the pipe to its owner
    assert receiving.recv_bytes() == b"still open"


def test_a_worker_over_nothing_works_in_idle_until_its_source_is_closed() -> None:
    ticks: list[float] = []

    class Ticker(Worker[None]):
        idle_seconds = 0.02

        def idle(self) -> None:
            ticks.append(time.monotonic())

    closed = threading.Event()
    ticker = Ticker("Ticker", Until(closed), lambda name, exc: None)
    time.sleep(0.2)
    closed.set()  # whoever owns the event ends it
    assert ticker.join(5.0) and len(ticks) >= 3


def test_the_fault_plan_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert faults.planned("sender") is None
    monkeypatch.setenv(faults.ENV, f"sender-raise-after:2@{tmp_path / 'once'}")
    assert faults.planned("writer") is None
    fault = faults.planned("sender")
    assert fault is not None
    fault.tick()
    with pytest.raises(faults.InjectedFault):
        fault.tick()
    again = faults.planned("sender")  # another process: the marker says the fault was taken
    assert again is not None
    again.tick()
    again.tick()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("stage", ["handler", "writer", "sender"])
def test_a_stage_that_raises_ends_the_process_and_the_next_one_recovers_the_run(
    root: Path, stage: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Test-only fault injection: the stage raises once, after 5 items, in the first process only.
    monkeypatch.setenv(faults.ENV, f"{stage}-raise-after:5@{tmp_path / 'fault-taken'}")
    run = nbtrack.init(project="test", dir=root, id=f"fault-{stage}")
    first = run._connection.process
    for i in range(20_000):
        run.log({"i": i})
        if i % 1000 == 0:
            time.sleep(0.02)
    run.finish()
    assert (tmp_path / "fault-taken").exists()
    assert run.restarts >= 1
    assert first is not None and first.exitcode == 70  # FATAL_EXIT_CODE: ended on purpose, not hung
    assert [r["i"] for r in stored_history(root, f"fault-{stage}")] == list(range(20_000))
    assert stored_run(root, f"fault-{stage}").state == "finished"
    said = [n for n in run.notices if "internal process failed" in n]
    assert len(said) == 1 and f"{stage.capitalize()} thread" in said[0] and "InjectedFault" in said[0]


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("thread", "after"), [("nbtrack-outbox", 250), ("nbtrack-pipe", 20), ("nbtrack-results", 20)]
)
def test_a_user_side_thread_that_fails_gives_the_run_up_and_the_users_process_goes_on(
    root: Path, thread: str, after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Test-only fault injection into the user process's own threads (the same Worker shape): the
    # thread raises after `after` items (the encoder's items are its drains, every ~20 ms).
    monkeypatch.setenv(faults.ENV, f"{thread}-raise-after:{after}")
    run = nbtrack.init(project="test", dir=root, id="user-side-fault")
    connection = run._connection
    assert connection is not None
    said = f"the {thread} thread failed (InjectedFault"
    logged = 0
    deadline = time.monotonic() + 60
    while not any(said in n for n in run.notices) and time.monotonic() < deadline:
        run.log({"i": logged})
        logged += 1
        if logged % 100 == 0:
            time.sleep(0.01)
    assert connection.lost_reason is not None and said in connection.lost_reason
    gone = [n for n in run.notices if said in n]
    assert len(gone) == 1 and "NOT stored" in gone[0]  # said at once, not at finish()
    for _ in range(100):  # the run is given up: these are counted, never queued
        run.log({"i": logged})
        logged += 1
    run.finish()  # returns: the run is lost, the user's process is not
    assert run.rows_lost >= 100
    stored = [r["i"] for r in stored_history(root, "user-side-fault")]
    assert stored == list(range(len(stored))) and len(stored) < logged  # in order, once, nothing made up
    assert stored_run(root, "user-side-fault").state != "finished"


def test_a_stage_that_died_of_another_says_the_first_failure() -> None:
    """A thread that fails because the stage it fed is gone is no cause of its own: whichever of
    the two reports first, what is said names the thread that failed first and why."""
    from nbtrack.worker import StageDied, failure_text

    first = failure_text("nbtrack-pipe", OSError("disk on fire"))
    assert first == "the nbtrack-pipe thread failed (OSError: disk on fire)"
    assert failure_text("nbtrack-outbox", StageDied(first)) == first

"""The sender's delivery rules, with a backend that fails on purpose (fault injection): a failure
that may pass is retried until it works (one notice each way); one that cannot is counted, and
the exit result says exactly which rows the store lacks and whether the log has them; an abort
ends a retry at once."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from nbtrack.internal.progress import LogProgress
from nbtrack.internal.sender import BATCH_BYTES, Sender
from nbtrack.online.retry import RetryPolicy
from nbtrack.proto import nbtrack_pb2 as pb

FAST = RetryPolicy(base=0.001, factor=2.0, cap=0.01)
ROWS = 15_000


class FailingBackend:
    """Keeps lines in a dict; refuses history at the offsets in `refuse` (for good) and fails the
    next `locked` history writes with "database is locked" (for now)."""

    rows_delivered = 0
    history_lines_stored = 0
    retrying = False
    failure: str | None = None

    def __init__(self, refuse: set[int] | None = None, locked: int = 0) -> None:
        self.refuse, self.locked = refuse or set(), locked
        self.lines: dict[int, str] = {}
        self.writes: list[int] = []  # the bytes of each history write taken
        self.finished: list[str] = []

    def upsert_run(self, run: pb.RunRecord, config: dict[str, Any]) -> tuple[str, str | None]:
        return "local", None

    def write_history(self, offset: int, lines: list[str], steps: list[int]) -> None:
        if offset in self.refuse:
            raise ValueError("a row the store cannot take")
        if self.locked:
            self.locked -= 1
            raise sqlite3.OperationalError("database is locked")
        for index, line in enumerate(lines):
            assert offset + index not in self.lines, "a line written twice"
            self.lines[offset + index] = line
        self.writes.append(sum(map(len, lines)))
        self.rows_delivered += len(lines)

    def finish_run(self, state: str, exit_code: int | None, runtime: float | None) -> None:
        self.finished.append(state)

    def pending(self) -> tuple[int, int]:
        return 0, 0

    def __getattr__(self, name: str) -> Any:  # the other Backend calls succeed and do nothing
        return lambda *args, **kwargs: None


def deliver(
    backend: FailingBackend, log: LogProgress | None, tmp_path: Path
) -> tuple[list[pb.Result], list[str], Sender]:
    results: list[pb.Result] = []
    notices: list[str] = []
    setup = pb.SetupRequest(mode="local", log_path=str(tmp_path / "run.nbt"))
    sender = Sender(
        results.append,
        notices.append,
        setup,
        lambda s, r, n: backend,
        log=log,
        policy=FAST,
    )
    sender.handle([pb.Record(run=pb.RunRecord(run_id="r", project="p"))])
    for first in range(0, ROWS, 5000):  # the sender writes 5,000 lines at a time
        rows = [
            pb.Record(history=pb.HistoryRecord(step=100 + i, data_json=b'{"i": %d}' % i))
            for i in range(first, first + 5000)
        ]
        sender.handle(rows)
    sender.handle([pb.Record(exit=pb.ExitRecord(exit_code=0))])
    return results, notices, sender


def test_a_store_that_refuses_for_now_is_retried_until_it_takes_every_row_once(tmp_path: Path) -> None:
    backend = FailingBackend(locked=5)
    results, notices, _ = deliver(backend, LogProgress(lines_logged=ROWS), tmp_path)
    assert sorted(backend.lines) == list(range(ROWS)) and backend.finished == ["finished"]
    assert len(notices) == 2, notices
    assert notices[0] == (
        "cannot write the store: database is locked; retrying until it accepts "
        "(rows wait in the transaction log meanwhile)"
    )
    assert notices[1].startswith("the store is written again")
    exit_result = results[-1].exit_result
    assert exit_result.state == "finished" and not exit_result.error.message


def test_rows_the_store_refuses_but_the_log_holds_leave_the_run_running_and_name_the_sync(
    tmp_path: Path,
) -> None:
    backend = FailingBackend(refuse={5000})
    results, notices, _ = deliver(backend, LogProgress(lines_logged=ROWS), tmp_path)
    assert len(backend.lines) == ROWS - 5000 and backend.finished == []
    exit_result = results[-1].exit_result
    assert exit_result.state == "running" and exit_result.rows_lost == 0
    log = tmp_path / "run.nbt"
    assert exit_result.error.message == (
        "5000 rows (steps 5100-10099) are not in the store (the store refused a write: a row the store "
        f"cannot take); they are in {log}: deliver them with `nbtrack sync {log}`"
    )
    assert len(notices) == 1 and "a row the store cannot take" in notices[0]


def test_rows_neither_the_store_nor_the_log_has_are_counted_exactly_and_the_run_ends_crashed(
    tmp_path: Path,
) -> None:
    backend = FailingBackend(refuse={5000})
    log = LogProgress(lines_logged=7000, lost="the transaction log was deleted (or its folder was)")
    results, notices, _ = deliver(backend, log, tmp_path)
    exit_result = results[-1].exit_result
    lost = (exit_result.state, exit_result.rows_lost, exit_result.lost_steps)
    assert lost == ("crashed", 5000, "5100-10099")
    assert backend.finished == ["crashed"]
    assert exit_result.error.message.startswith("5000 rows (steps 5100-10099) are lost")
    assert "was deleted" in exit_result.error.message and "lost" in notices[0]


def test_rows_the_store_refuses_wait_for_a_log_that_cannot_be_written_yet(tmp_path: Path) -> None:
    backend = FailingBackend(refuse={5000})
    log = LogProgress(lines_logged=7000, failing="No space left on device")

    def space_comes_back() -> None:
        log.lines_logged, log.failing = ROWS, None

    threading.Timer(0.5, space_comes_back).start()
    results, notices, _ = deliver(backend, log, tmp_path)
    exit_result = results[-1].exit_result
    assert (exit_result.state, exit_result.rows_lost) == ("running", 0)
    assert exit_result.error.message.startswith("5000 rows (steps 5100-10099) are not in the store")
    assert "kept in memory until it can" in notices[0]  # never "lost" while the log is retried


def test_an_abort_ends_a_retry_at_once_and_claims_nothing(tmp_path: Path) -> None:
    backend = FailingBackend(locked=1 << 30)
    sender = Sender(
        lambda r: None,
        lambda n: None,
        pb.SetupRequest(mode="local"),
        lambda s, r, n: backend,
        log=LogProgress(),
        policy=RetryPolicy(base=0.5, cap=0.5),
    )
    sender.handle([pb.Record(run=pb.RunRecord(run_id="r", project="p"))])
    sender.handle([pb.Record(history=pb.HistoryRecord(step=0, data_json=b"{}"))])
    threading.Timer(0.3, sender.abort).start()
    started = time.monotonic()
    sender.handle([pb.Record(exit=pb.ExitRecord(exit_code=0))])
    assert time.monotonic() - started < 1.5
    assert sender.exit_result is None and backend.finished == []
    assert sender.progress.stored_end == 0 and sender.progress.dropped.lines() == 0


def test_rows_of_megabytes_reach_the_store_in_writes_within_the_memory_bound() -> None:
    backend = FailingBackend()
    sender = Sender(lambda r: None, lambda n: None, pb.SetupRequest(mode="local"), lambda s, r, n: backend)
    sender.handle([pb.Record(run=pb.RunRecord(run_id="r", project="p"))])
    row = b'{"s": "' + b"x" * 2_000_000 + b'"}'
    batch = 8  # rows of 2 MB in one batch read back from the log (feed.ReadBatch)
    for first in range(0, 5 * batch, batch):
        sender.handle(
            [pb.Record(history=pb.HistoryRecord(step=i, data_json=row)) for i in range(first, first + batch)]
        )
    sender.close()
    assert sorted(backend.lines) == list(range(5 * batch))
    # Rows are written once they reach the bound: never more than it and the batch that reached it.
    assert max(backend.writes) < BATCH_BYTES + batch * len(row), backend.writes

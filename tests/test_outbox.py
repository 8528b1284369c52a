"""The outbox on its own, over a real pipe nobody reads: what waits is bounded in memory, spilled
to a file past the bound, and only when that file cannot be written does log() wait for room."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from nbtrack import faults
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.transport.outbox import Outbox

LIMIT = 50_000  # bytes


def log_many(outbox: Outbox, n: int) -> threading.Thread:
    thread = threading.Thread(
        target=lambda: [outbox.log(({"x": float(i)}, None, True, 0.0)) for i in range(n)], daemon=True
    )
    thread.start()
    return thread


class Logger(threading.Thread):
    """Logs without pause until told to stop; `count` says how many log() calls returned."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__(daemon=True)
        self.outbox, self.count, self.stop = outbox, 0, threading.Event()
        self.start()

    def run(self) -> None:
        while not self.stop.is_set():
            self.outbox.log(({"x": float(self.count)}, None, True, 0.0))
            self.count += 1


def wait_for(condition: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)
    assert condition(), "timed out"  # type: ignore[operator]


def test_past_its_memory_limit_the_outbox_spills_and_log_never_waits(tmp_path: Path) -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)
    said: list[str] = []
    outbox = Outbox(writer, memory_limit=LIMIT, spill_path=tmp_path / "outbox.spill", warn=said.append)
    thread = log_many(outbox, 50_000)
    thread.join(30)
    assert not thread.is_alive()  # never waited
    wait_for(lambda: outbox.calls_encoded == 50_000)
    assert outbox.retained_bytes <= LIMIT and outbox.spilled_bytes > 10 * LIMIT
    assert (tmp_path / "outbox.spill").stat().st_size == outbox.spilled_bytes
    assert said == []
    outbox.acknowledge(10**9)  # everything stored: the file is emptied
    assert outbox.retained == 0 and (tmp_path / "outbox.spill").stat().st_size == 0
    reader.close()
    outbox.close(1.0)


def test_without_a_spill_file_log_waits_for_room_and_says_so_once_each_way(tmp_path: Path) -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)
    said: list[str] = []
    unwritable = tmp_path / "no such folder" / "outbox.spill"
    outbox = Outbox(writer, memory_limit=LIMIT, spill_path=unwritable, warn=said.append)
    logger = Logger(outbox)
    # The calls queued before memory filled (and the one that waits) are encoded, then nothing more.
    wait_for(lambda: outbox.full and not outbox._items)
    time.sleep(0.1)
    held, calls = outbox.retained_bytes, logger.count
    time.sleep(0.5)
    assert outbox.full and logger.count == calls  # log() waits ...
    assert outbox.retained_bytes == held  # ... and memory does not grow while it does
    assert len(said) == 1 and "log() is waiting" in said[0]
    # The internal process stores what waited: room again, and log() goes on.
    logger.stop.set()
    while logger.is_alive():
        outbox.acknowledge(10**9)
        logger.join(0.05)
    assert logger.count > calls
    # Each time memory filled again: one sentence when log() began to wait, one when it went on.
    waits = ["waiting" if "log() is waiting" in n else "goes on" for n in said]
    assert waits == ["waiting", "goes on"] * (len(said) // 2) and len(said) % 2 == 0, said
    reader.close()
    outbox.close(1.0)


def test_a_log_waiting_for_room_returns_when_the_run_loses_its_process(tmp_path: Path) -> None:
    """No room will come once the connection gave up: the waiting call returns, and the outbox
    does not say the rows are in the log (the connection says what was lost)."""
    reader, writer = multiprocessing.Pipe(duplex=False)
    said: list[str] = []
    outbox = Outbox(writer, memory_limit=LIMIT, spill_path=tmp_path / "missing" / "x", warn=said.append)
    logger = Logger(outbox)
    wait_for(lambda: outbox.full and not outbox._items)
    calls = logger.count
    time.sleep(0.3)
    assert logger.count == calls  # waiting
    logger.stop.set()
    outbox.release()
    logger.join(10)
    assert not logger.is_alive()
    assert len(said) == 1 and "log() is waiting" in said[0]
    reader.close()
    outbox.close(1.0)


@pytest.mark.parametrize("thread", ["nbtrack-outbox", "nbtrack-pipe"])
def test_a_thread_of_the_outbox_that_fails_wakes_every_waiter_and_says_why_once(
    thread: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the outbox's threads never ends the user's process: the failure is kept, said
    once through on_failure (the connection then gives the run up), and flush() stops waiting."""
    monkeypatch.setenv(faults.ENV, f"{thread}-raise-after:3")  # test-only fault injection
    reader, writer = multiprocessing.Pipe(duplex=False)
    failures: list[str] = []
    outbox = Outbox(writer, on_failure=failures.append)
    for _ in range(3):  # three drains, three messages
        outbox.send(pb.Record(), urgent=True)
        outbox.flush(10)
    for _ in range(5):
        outbox.send(pb.Record(), urgent=True)
    assert not outbox.flush(30)  # returns when the thread fails (or the deadline passes)
    wait_for(lambda: failures)
    assert failures == [outbox.failure]
    assert f"the {thread} thread failed (InjectedFault" in failures[0]
    if thread == "nbtrack-pipe":
        # Nothing will be written any more: the pipe is closed, so the internal process sees EOF
        # and ends the run itself, as if this process had ended.
        received = 0
        with pytest.raises(EOFError):
            while reader.poll(10):
                reader.recv_bytes()
                received += 1
        assert received == 3
    outbox.close(1.0)
    assert failures == [outbox.failure]  # said once, though the other thread may follow


def test_a_spilled_frame_copied_over_another_of_the_same_size_is_caught(tmp_path: Path) -> None:
    """Length and checksum alone would take a copy of frame 1 at frame 2's place for frame 2: its
    sequence number tells them apart, so the copy is reported damaged instead of sent twice."""
    import os

    import pytest

    from nbtrack.transport.spill import SpillDamaged, SpillFile

    spill = SpillFile(tmp_path / "outbox.spill")
    first = spill.append(b"a" * 100, seq=1)
    second = spill.append(b"b" * 100, seq=2)
    assert spill.read(first, 100, 1) == b"a" * 100 and spill.read(second, 100, 2) == b"b" * 100
    with open(spill.path, "r+b") as file:
        frame = os.pread(file.fileno(), second - first, first)
        os.pwrite(file.fileno(), frame, second)
    with pytest.raises(SpillDamaged, match="does not hold what was written"):
        spill.read(second, 100, 2)
    os.truncate(spill.path, second + 10)
    with pytest.raises(SpillDamaged, match="cut short"):
        spill.read(second, 100, 2)


def test_the_encoder_keeps_call_order_and_numbers_each_call_and_record() -> None:
    """Without threads: runs of log() calls and runs of console lines each become one message,
    records go between them in call order, each call and numbered record gets its own seq, an
    unretained record none, and a run holding NaN is encoded exactly."""
    from collections import deque

    from nbtrack.transport.encoder import ConsoleLine, Encoder, ExactCall, Item, Message, RecordItem

    def call(x: float) -> tuple[dict[str, float], None, bool, float]:
        return ({"x": x}, None, True, 0.0)

    exit_record = pb.Record(exit=pb.ExitRecord(state="finished")).SerializeToString()
    items: deque[Item] = deque(
        [
            RecordItem(b"", retain=False),
            call(1.0),
            call(2.0),
            ExactCall(call(float("nan"))),
            ConsoleLine(pb.OutputRecord.STDOUT, "a", 0.0),
            ConsoleLine(pb.OutputRecord.STDERR, "b", 0.0),
            call(3.0),
            RecordItem(exit_record, exit=True),
        ]
    )
    messages: list[Message] = []
    Encoder(messages.append).drain(items)
    assert not items
    assert [(m.calls, m.seq, m.exit) for m in messages] == [
        (0, 0, False),
        (3, 3, False),
        (0, 4, False),
        (1, 5, False),
        (0, 6, True),
    ]
    records = [pb.Record.FromString(m.data or b"") for m in messages]
    batch = records[1].request.log_calls
    assert (batch.first_seq, batch.count, records[1].control.seq) == (1, 3, 3)
    assert batch.calls_json.startswith(b'[[{"x":1.0}') and b'{"x":NaN}' in batch.calls_json
    assert [line.line for line in records[2].console.lines] == ["a", "b"] and records[2].control.seq == 4
    assert records[3].request.log_calls.first_seq == 5 and b"NaN" not in records[3].SerializeToString()
    assert records[4].exit.state == "finished" and records[4].control.seq == 6


def test_the_encoder_cuts_a_long_run_of_calls_at_the_calls_per_message_cap() -> None:
    from collections import deque

    from nbtrack.transport.encoder import MAX_CALLS_PER_MESSAGE, Encoder, Item, Message

    items: deque[Item] = deque(
        ({"x": float(i)}, None, True, 0.0) for i in range(2 * MAX_CALLS_PER_MESSAGE + 5)
    )
    messages: list[Message] = []
    Encoder(messages.append).drain(items)
    assert [(m.calls, m.seq) for m in messages] == [
        (MAX_CALLS_PER_MESSAGE, MAX_CALLS_PER_MESSAGE),
        (MAX_CALLS_PER_MESSAGE, 2 * MAX_CALLS_PER_MESSAGE),
        (5, 2 * MAX_CALLS_PER_MESSAGE + 5),
    ]

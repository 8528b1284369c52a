"""Hands records to the internal process in call order without ever blocking the caller.

`Outbox` is what the connection uses; its parts live next to it:

- encoder.py: what callers queue (a log() call as a bare tuple, the one item with no class of
  its own: log() is the hot path) and the "nbtrack-outbox" thread, which drains the queue every
  few milliseconds (at once when a request waits) and encodes it into numbered messages;
- retention.py: every numbered message is kept until the internal process acknowledges that its
  writer has it in the transaction log (`acknowledge`), in memory up to `memory_limit` bytes and
  past it in the spill file (spill.py); so a row that log() accepted is never lost with a
  process: `reconnect` sends every retained message again to a new one;
- pipe.py: the "nbtrack-pipe" thread, which writes the messages to record_pipe, blocking while the
  internal process catches up, and is the only one that switches to a new process's pipe.

Nothing is ever dropped by the outbox itself: only if the spill file cannot be written either
(the disk is full) does log() wait for room, with one notice.

A thread of the outbox that fails (a bug) never ends the user's process: the failure is logged
and kept in `failure`, every waiter (flush(), a log() waiting for room) wakes, and `on_failure`
tells the connection, which gives the run up (it says which rows are not in the log).
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.transport.encoder import (
    FLUSH_INTERVAL,
    MAX_MESSAGE_BYTES,
    Clock,
    ConsoleLine,
    Encoder,
    EncoderThread,
    ExactCall,
    Item,
    LogCall,
    Message,
    RecordItem,
)
from nbtrack.transport.pipe import PipeThread, Reconnect
from nbtrack.transport.retention import Retention
from nbtrack.transport.spill import SpillDamaged
from nbtrack.worker import Inbox, failure_text

# Re-exported: the names callers import from here (MAX_MESSAGE_BYTES: benchmarks/README.md).
__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "MAX_MESSAGE_BYTES",
    "ConsoleLine",
    "ExactCall",
    "LogCall",
    "Outbox",
    "SpillDamaged",
]

DEFAULT_MEMORY_LIMIT = 64 * 1024 * 1024  # bytes of retained messages kept in memory
ROOM_CHECK = 0.1  # seconds between checks while log() waits for room
# The pipe thread's inbox takes any number of messages: the outbox bounds memory in bytes (then
# spills), and the encoder puts while holding the lock acknowledge() needs, so an inbox that made
# it wait for room would stop the acknowledgements that make room.
PIPE_INBOX_LIMIT = sys.maxsize


class Outbox:
    """The ordered, non-blocking way into record_pipe."""

    def __init__(
        self,
        record_pipe: Connection,
        *,
        interval: float = FLUSH_INTERVAL,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        spill_path: Path | None = None,
        warn: Callable[[str], None] = lambda message: None,
        on_failure: Callable[[str], None] = lambda reason: None,
    ) -> None:
        """spill_path: where retained messages past memory_limit go (None: nowhere, log() waits);
        warn: says once that log() is waiting for room, and once that it no longer is (and once
        that the spill file lost rows); on_failure: a thread of the outbox failed, so nothing moves
        any more (with the reason)."""
        self._items: collections.deque[Item] = collections.deque()
        self._encoded: Inbox[Message | Reconnect] = Inbox(PIPE_INBOX_LIMIT)  # for the pipe thread
        self._encoder = Encoder(self._put)  # the encoder thread's alone
        # Encoded and not yet acknowledged. The lock makes "retained" and "queued for the pipe"
        # change together, so a reconnect re-sends each message exactly once.
        self._retention = Retention(memory_limit, spill_path, warn)
        self._lock = threading.Lock()
        self._warn = warn
        self._on_failure = on_failure
        self._room = threading.Condition(self._lock)  # log() waits on it when memory is full
        self.full = False  # no room in memory or on disk: log() waits (checked on the hot path)
        self._waiting = False  # log() calls are waiting for room (said once)
        self._released = False  # no room will ever come: log() must not wait (release())
        self._wake = threading.Event()
        self._stopping = False
        self._progress = threading.Condition()
        self._cycles = 0  # completed drains; flush() waits for one that began after it was called
        self._messages_encoded = 0
        self._messages_sent = 0
        self.calls_encoded = 0
        self.calls_sent = 0
        self.failure: str | None = None  # a thread of the outbox died: nothing moves any more
        self._pipe = PipeThread(
            record_pipe, self._encoded, self._retention, self._lock, self._sent, self._died
        )
        # After its last drain (close()) the encoder thread closes the pipe thread's inbox: only
        # then, so that no message is ever queued after the pipe thread has ended.
        self._encoding = EncoderThread(
            Clock(self._wake), interval, self._drain, self._encoded.close, self._died
        )

    def log(self, call: LogCall) -> None:
        """Queue one finite log() call (the hot path: one deque append of the caller's tuple)."""
        self._items.append(call)
        if self.full and not self._released:
            self._wait_for_room()

    def log_exact(self, call: LogCall) -> None:
        """Queue a log() call whose row holds NaN or infinity."""
        self._items.append(ExactCall(call))
        if self.full and not self._released:
            self._wait_for_room()

    def console(self, line: ConsoleLine) -> None:
        """Queue one captured console line (sent with its neighbours in one record)."""
        self._items.append(line)

    def send(self, record: pb.Record, *, urgent: bool = False, retain: bool = True) -> None:
        """Queue a record after everything already queued; urgent wakes the encoder now.

        retain=False: not numbered and never re-sent (the setup and run records, which a new
        internal process gets afresh).
        """
        data = record.SerializeToString()  # now: later changes to record do not travel
        self._items.append(RecordItem(data, retain, exit=retain and record.HasField("exit")))
        if urgent:
            self._wake.set()

    @property
    def retained(self) -> int:
        """Messages kept until the internal process acknowledges them."""
        return len(self._retention.messages)

    @property
    def retained_bytes(self) -> int:
        """Bytes of retained messages held in memory (the spill file's are not counted)."""
        return self._retention.bytes

    @property
    def spilled_bytes(self) -> int:
        spill = self._retention.spill
        return spill.end if spill is not None else 0

    @property
    def acknowledged(self) -> int:
        """The last sequence number the internal process acknowledged."""
        return self._retention.acknowledged

    @property
    def calls_lost(self) -> int:
        """log() calls of spilled messages found damaged (never sent)."""
        return self._retention.calls_lost

    @property
    def lost_reason(self) -> str | None:
        """Why calls were lost (the first damage found)."""
        return self._retention.lost_reason

    @property
    def broken(self) -> str | None:
        """Why the pipe cannot be written (until a reconnect)."""
        return self._pipe.broken

    def calls_not_acknowledged(self) -> int:
        """log() calls the internal process has not acknowledged: retained, or not encoded yet."""
        return self._calls_waiting() + self._retention.calls()

    def calls_unsent(self) -> int:
        """log() calls still in this process: not encoded yet, or encoded and not written to the pipe."""
        return self._calls_waiting() + self.calls_encoded - self.calls_sent

    def _calls_waiting(self) -> int:
        return sum(1 for item in list(self._items) if isinstance(item, (tuple, ExactCall)))

    def calls_after(self, seq: int, timeout: float = 1.0) -> int:
        """log() calls numbered after seq, or not numbered yet (what a log holding calls up to seq
        lacks); the calls of damaged spilled messages are counted in calls_lost instead. Waits
        (up to timeout) for the encoder to number what is queued, so no call is in between."""
        target = self._cycles + 2
        self._wake.set()
        with self._progress:
            deadline = time.monotonic() + timeout
            while (
                self._cycles < target
                and self._encoding.is_alive()
                and self.failure is None
                and time.monotonic() < deadline
            ):
                self._progress.wait(0.05)
        waiting = self._calls_waiting()
        with self._lock:
            retained = list(self._retention.messages)
        return waiting + self._retention.calls_after(seq, retained)

    def acknowledge(self, seq: int) -> None:
        """The internal process's log holds everything up to seq: stop keeping it."""
        with self._lock:
            self._retention.acknowledge(seq)
            if self.full and self._retention.has_room():
                self.full = False
                self._room.notify_all()

    def reconnect(self, record_pipe: Connection, preamble: list[bytes]) -> None:
        """Write to a new internal process from now on: the preamble, then every retained
        message again, then what comes next."""
        self._encoded.put(Reconnect(record_pipe, preamble))

    def pending(self) -> int:
        """log() calls and records not yet written to the pipe."""
        return len(self._items) + self.calls_encoded - self.calls_sent

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is written to the pipe; False on timeout."""
        deadline = time.monotonic() + timeout
        target = self._cycles + 2  # the drain in progress may have started before our items
        self._wake.set()
        with self._progress:
            while self.broken is None and (
                self._cycles < target or self._messages_sent < self._messages_encoded
            ):
                left = deadline - time.monotonic()
                if left <= 0 or not self._encoding.is_alive() or self.failure is not None:
                    return False
                self._progress.wait(min(left, 0.05))
                self._wake.set()
        return self.broken is None

    def close(self, timeout: float) -> bool:
        """Write what is queued, then stop both threads; False if something was left behind
        (`pending()` says how much). Nothing queued is dropped: the encoder's last drain takes
        everything, then it closes the pipe thread's inbox, and the pipe thread writes all of
        it before it closes the connection and removes the spill file, on its own if that takes
        longer than timeout (as long as this process lives)."""
        deadline = time.monotonic() + timeout
        flushed = self.flush(timeout)
        self._stopping = True
        self._encoding.stop(max(0.0, deadline - time.monotonic()))  # one last drain, then it ends
        self._pipe.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self.full = False
            self._room.notify_all()
        return flushed and not self._pipe.is_alive()

    def release(self) -> None:
        """The run lost its internal process for good: nothing will make room any more, so a
        log() waiting for it returns (the connection counts what it could not keep)."""
        with self._lock:
            self.full = False
            self._released = True
            self._room.notify_all()

    def _wait_for_room(self) -> None:
        """log() found memory full and the spill file unwritable: wait until acknowledgements
        make room (a dead or hung internal process is replaced meanwhile; see connection.py).
        Said once when the wait begins and once when it ends, however many calls wait."""
        with self._lock:
            if not self.full:
                return
            announce, self._waiting = not self._waiting, True
        if announce:
            self._warn(
                f"log() is waiting: {self._retention.bytes / 1e6:.0f} MB of rows wait for the internal "
                "process and the spill file cannot be written; logging goes on once they are in the log"
            )
        with self._lock:
            while self.full and not self._stopping and not self._released and self.failure is None:
                self._room.wait(ROOM_CHECK)
            ended, self._waiting = self._waiting, False
            made_room = not (self._released or self._stopping or self.failure is not None)
        if ended and made_room:  # else the run lost its process, and the connection says what it cost
            self._warn("log() goes on: the rows that waited are in the transaction log")

    # -- the encoder thread ----------------------------------------------------------------

    def _drain(self) -> None:
        """One drain of the deque, on each tick of the clock. It goes on while the pipe is
        broken: what it encodes is retained for a new process. Not once the pipe thread failed:
        nothing would ever send it."""
        if self.failure is None:
            self._encoder.drain(self._items)
        with self._progress:
            self._cycles += 1
            self._progress.notify_all()

    def _put(self, message: Message) -> None:
        """Retain an encoded message (unless it is unnumbered) and queue it for the pipe thread."""
        self._messages_encoded += 1
        self.calls_encoded += message.calls
        with self._lock:
            if message.seq and not self._retention.keep(message):
                self.full = True  # memory full, spill file unwritable: log() waits for room
            self._encoded.put(message)

    # -- the pipe thread -------------------------------------------------------------------

    def _sent(self, message: Message) -> None:
        """The pipe thread is done with message (written, or kept for a new process)."""
        with self._progress:
            self._messages_sent += 1
            self.calls_sent += message.calls
            self._progress.notify_all()

    def _died(self, thread: str, exc: BaseException) -> None:
        """A thread of the outbox failed (a bug; the Worker logged it): keep the first failure,
        and make every waiter give up. The user's process goes on."""
        if self.failure is not None:
            return  # the first failure is the one that counts (the other thread may follow it)
        self.failure = failure_text(thread, exc)
        self._encoded.close()  # the pipe thread ends once it wrote what it has (the encoder died)
        with self._progress:
            self._progress.notify_all()
        with self._lock:
            self.full = False
            self._room.notify_all()
        self._on_failure(self.failure)

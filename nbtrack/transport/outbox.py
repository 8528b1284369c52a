"""Hands records to the internal process in call order without ever blocking the caller.

Callers append to one deque: a log() call as a (row, step, commit, timestamp) tuple (an
`ExactCall` when its row holds NaN or infinity), a captured console line as a ConsoleLine,
anything else as an already serialized Record. Two named threads move it on, each a `Worker`
(nbtrack/worker.py):

- "nbtrack-outbox" drains the deque every few milliseconds (at once when a request waits) and
  encodes it: runs of consecutive log() calls become PartialHistoryRequests of at most
  MAX_CALLS_PER_MESSAGE calls and about MAX_MESSAGE_BYTES (a small message keeps the handler's
  working set in cache, and big rows never make a message of hundreds of megabytes), runs
  of console lines one ConsoleRecord each (so a chatty cell costs the internal process one
  record per batch, not per line); its source is a clock that ticks every FLUSH_INTERVAL, or at
  once when woken;
- "nbtrack-pipe" takes the encoded messages from its inbox and writes them to record_q, blocking
  while the internal process catches up. It owns the connection it writes to: a restart hands it
  a new one, and only this thread closes the old one, so no other thread pulls a pipe from under
  a write in progress.

Everything gets a sequence number (each log() call its own) and stays *retained* until the
internal process acknowledges that its writer has it in the transaction log (`acknowledge`).
If that process dies, `reconnect` points the pipe at a new one and sends it every retained
message again, in order; the new process skips what its log already holds. So a row that log()
accepted is never lost with a process.

Memory is bounded: retained messages are kept in memory up to `memory_limit` bytes; past it
they are appended to a spill file (`spill_path`, in the run's folder) and read back from there
when their turn comes. The file is emptied whenever nothing spilled is retained any more. Only
if the spill file cannot be written either (the disk is full) does log() wait for room, with
one notice; nothing is ever dropped by the outbox itself.

A thread of the outbox that fails (a bug) never ends the user's process: the failure is logged
and kept in `failure`, every waiter (flush(), a log() waiting for room) wakes, and `on_failure`
tells the connection, which gives the run up (it says which rows are not in the log).

The spill file lives on disk, where something else may truncate or overwrite it. Each message in
it carries its length and a CRC-32, so a damaged one is never sent (a new internal process would
choke on it, and the next, and so on): it is counted in `calls_lost` and said once, and the exit
record sent after it marks the run `crashed`, so a run with such a hole never ends as `finished`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from nbtrack import jsonutil
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.worker import END, Inbox, Worker, _Marker

__all__ = ["DEFAULT_MEMORY_LIMIT", "ConsoleLine", "ExactCall", "Outbox", "SpillDamaged"]

logger = logging.getLogger("nbtrack")

LogCall = tuple[dict[str, Any], "int | None", bool, float]
FLUSH_INTERVAL = 0.02  # seconds between drains
MAX_CALLS_PER_MESSAGE = 1000
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # a batch of big rows is cut to messages of about this size
DEFAULT_MEMORY_LIMIT = 64 * 1024 * 1024  # bytes of retained messages kept in memory
ROOM_CHECK = 0.1  # seconds between checks while log() waits for room
# The pipe thread's inbox takes any number of messages: the outbox bounds memory in bytes (then
# spills), and the encoder puts while holding the lock acknowledge() needs, so an inbox that made
# it wait for room would stop the acknowledgements that make room.
PIPE_INBOX_LIMIT = sys.maxsize


class _Message(NamedTuple):
    data: bytes | None  # None: spilled, at [offset, offset + size) of the spill file
    calls: int  # log() calls inside (0 for other records)
    seq: int  # the last sequence number inside; 0: not numbered, not retained (setup, run)
    size: int
    offset: int = -1
    exit: bool = False  # the exit record: a run that lost calls before it is marked crashed


class _Reconnect(NamedTuple):
    conn: Connection
    preamble: list[bytes]  # sent first, unnumbered (the new process's setup)


@dataclass(frozen=True, slots=True)
class ConsoleLine:  # not a tuple, like _Unnumbered
    stream: pb.OutputRecord.Stream.ValueType  # STDOUT or STDERR
    line: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class ExactCall:
    """A log() call whose row holds NaN or infinity: its batch is encoded by the exact (slower)
    encoder. Everything else about it is a call like any other: numbered, retained, re-sent."""

    call: LogCall


@dataclass(frozen=True, slots=True)
class _Exit:  # the exit record (numbered and retained like any record)
    data: bytes


# Appended to an exit record, this sets its state (protobuf merges concatenated messages).
_CRASHED = pb.Record(exit=pb.ExitRecord(state="crashed")).SerializeToString()


@dataclass(frozen=True, slots=True)
class _Unnumbered:  # not a tuple: the encoder tells log() calls apart by `type(item) is tuple`
    data: bytes


class Outbox:
    """The ordered, non-blocking way into record_q."""

    def __init__(
        self,
        record_q: Connection,
        *,
        interval: float = FLUSH_INTERVAL,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        spill_path: Path | None = None,
        warn: Callable[[str], None] = lambda message: None,
        on_failure: Callable[[str], None] = lambda reason: None,
    ) -> None:
        """spill_path: where retained messages past memory_limit go (None: nowhere, log() waits);
        warn: says once that log() is waiting for room, and once that it no longer is;
        on_failure: a thread of the outbox failed, so nothing moves any more (with the reason)."""
        self._conn = record_q
        self._items: collections.deque[LogCall | ExactCall | bytes | _Unnumbered | _Exit | ConsoleLine] = (
            collections.deque()
        )
        self._encoded: Inbox[_Message | _Reconnect] = Inbox(PIPE_INBOX_LIMIT)  # for the pipe thread
        self._seq = 0  # the last sequence number given (encoder thread only)
        self._calls_per_message = MAX_CALLS_PER_MESSAGE  # fewer while rows are big (encoder only)
        # Encoded and not yet acknowledged, oldest first. The lock makes "retained" and "queued
        # for the pipe" change together, so a reconnect re-sends each message exactly once.
        self._retained: collections.deque[_Message] = collections.deque()
        self._lock = threading.Lock()
        self._memory_limit = memory_limit
        self._retained_bytes = 0  # of retained messages held in memory
        self._spill = _SpillFile(spill_path) if spill_path is not None else None
        self._spilled = 0  # retained messages in the spill file
        self._warn = warn
        self._on_failure = on_failure
        self._room = threading.Condition(self._lock)  # log() waits on it when memory is full
        self.full = False  # no room in memory or on disk: log() waits (checked on the hot path)
        self._waiting = False  # log() calls are waiting for room (said once)
        self._released = False  # no room will ever come: log() must not wait (release())
        self._resent_through = 0  # pipe thread: seqs up to here were re-sent from retention
        self.acknowledged = 0
        self._wake = threading.Event()
        self._stopping = False
        self._progress = threading.Condition()
        self._cycles = 0  # completed drains; flush() waits for one that began after it was called
        self._messages_encoded = 0
        self._messages_sent = 0
        self.calls_encoded = 0
        self.calls_sent = 0
        self.calls_lost = 0  # log() calls of spilled messages found damaged (never sent)
        self._lost_seqs: set[int] = set()
        self.lost_reason: str | None = None  # why (the first damage found)
        self.broken: str | None = None  # why the pipe cannot be written (until a reconnect)
        self.failure: str | None = None  # a thread of the outbox died: nothing moves any more
        self._writer = _PipeThread(self, self._encoded)
        self._encoder = _EncoderThread(self, _Clock(self._wake), interval)

    def log(self, call: LogCall) -> None:
        """Queue one finite log() call (the hot path: one deque append)."""
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
        if not retain:
            self._items.append(_Unnumbered(data))
        elif record.HasField("exit"):
            self._items.append(_Exit(data))
        else:
            self._items.append(data)
        if urgent:
            self._wake.set()

    @property
    def retained(self) -> int:
        """Messages kept until the internal process acknowledges them."""
        return len(self._retained)

    @property
    def retained_bytes(self) -> int:
        """Bytes of retained messages held in memory (the spill file's are not counted)."""
        return self._retained_bytes

    @property
    def spilled_bytes(self) -> int:
        return self._spill.end if self._spill is not None else 0

    def calls_not_acknowledged(self) -> int:
        """log() calls the internal process has not acknowledged: retained, or not encoded yet."""
        return self._calls_waiting() + sum(message.calls for message in list(self._retained))

    def calls_unsent(self) -> int:
        """log() calls still in this process: not encoded yet, or encoded and not written to the pipe."""
        return self._calls_waiting() + self.calls_encoded - self.calls_sent

    def _calls_waiting(self) -> int:
        return sum(1 for item in list(self._items) if type(item) is tuple or type(item) is ExactCall)

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
                and self._encoder.is_alive()
                and self.failure is None
                and time.monotonic() < deadline
            ):
                self._progress.wait(0.05)
        waiting = self._calls_waiting()
        with self._lock:
            retained = list(self._retained)
        lost = self._lost_seqs
        return waiting + sum(
            min(m.calls, max(0, m.seq - seq)) for m in retained if m.calls and m.seq not in lost
        )

    def acknowledge(self, seq: int) -> None:
        """The internal process's log holds everything up to seq: stop keeping it."""
        with self._lock:
            retained = self._retained
            while retained and retained[0].seq <= seq:
                message = retained.popleft()
                if message.data is None:
                    self._spilled -= 1
                else:
                    self._retained_bytes -= message.size
            self.acknowledged = max(self.acknowledged, seq)
            if self._spilled == 0 and self._spill is not None:
                self._spill.empty()  # nothing in it is needed any more
            if self.full and self._retained_bytes <= self._memory_limit:
                self.full = False
                self._room.notify_all()

    def reconnect(self, record_q: Connection, preamble: list[bytes]) -> None:
        """Write to a new internal process from now on: the preamble, then every retained
        message again, then what comes next."""
        self._encoded.put(_Reconnect(record_q, preamble))

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
                if left <= 0 or not self._encoder.is_alive() or self.failure is not None:
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
        self._encoder.stop(max(0.0, deadline - time.monotonic()))  # one last drain, then it ends
        self._writer.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self.full = False
            self._room.notify_all()
        return flushed and not self._writer.is_alive()

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
                f"log() is waiting: {self._retained_bytes / 1e6:.0f} MB of rows wait for the internal "
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

    def _encode(self) -> None:
        """One drain of the deque, on each tick of the clock. It goes on while the pipe is
        broken: what it encodes is retained for a new process. Not once the pipe thread failed:
        nothing would ever send it."""
        if self.failure is None:
            self._drain()
        with self._progress:
            self._cycles += 1
            self._progress.notify_all()

    def _drain(self) -> None:
        items = self._items
        batch: list[Any] = []  # consecutive log() calls, or consecutive console lines
        lines = False  # the batch holds console lines (else log() calls)
        exact = False  # a call of the batch needs the exact encoder
        while items:
            item = items.popleft()
            kind = type(item)
            if kind is tuple or kind is ExactCall or kind is ConsoleLine:
                is_line = kind is ConsoleLine
                if batch and is_line != lines:
                    self._put_batch(batch, lines, exact)
                    batch, exact = [], False
                lines = is_line
                if kind is ExactCall:
                    exact = True
                    item = item.call  # type: ignore[union-attr]
                batch.append(item)
                if len(batch) >= self._calls_per_message:
                    self._put_batch(batch, lines, exact)
                    batch, exact = [], False
                continue
            if batch:
                self._put_batch(batch, lines, exact)
                batch, exact = [], False
            if kind is _Unnumbered:
                data = item.data  # type: ignore[union-attr]
                self._put(_Message(data, 0, 0, len(data)))
            else:
                self._seq += 1
                # Appending a serialized message merges it into the one before (protobuf's
                # rule for concatenation): this sets control.seq without parsing the record.
                number = pb.Record(control=pb.Control(seq=self._seq)).SerializeToString()
                is_exit = kind is _Exit
                data = (item.data if is_exit else item) + number  # type: ignore[union-attr,operator]
                self._put(_Message(data, 0, self._seq, len(data), exit=is_exit))
        if batch:
            self._put_batch(batch, lines, exact)

    def _put_batch(self, batch: list[Any], lines: bool, exact: bool) -> None:
        if lines:
            self._put_lines(batch)
        else:
            self._put_calls(batch, exact)

    def _put_lines(self, lines: list[ConsoleLine]) -> None:
        self._seq += 1
        console = pb.ConsoleRecord(
            lines=[pb.OutputRecord(stream=x.stream, line=x.line, timestamp=x.timestamp) for x in lines]
        )
        data = pb.Record(console=console, control=pb.Control(seq=self._seq)).SerializeToString()
        self._put(_Message(data, 0, self._seq, len(data)))

    def _put_calls(self, calls: list[LogCall], exact: bool) -> None:
        # One encoder for the whole batch: the exact one keeps NaN and infinity (orjson would
        # write them as null), the fast one serves every batch without them.
        encoded = jsonutil.dumps(calls) if exact else orjson.dumps(calls)
        if len(encoded) > MAX_MESSAGE_BYTES and len(calls) > 1:
            # Big rows: smaller messages from now on, and this batch cut to that size, so that
            # neither side ever holds (or parses) one message of hundreds of megabytes.
            fit = max(1, len(calls) * MAX_MESSAGE_BYTES // len(encoded))
            self._calls_per_message = min(fit, MAX_CALLS_PER_MESSAGE)
            del encoded
            for start in range(0, len(calls), fit):
                self._put_calls(calls[start : start + fit], exact)
            return
        if len(encoded) < MAX_MESSAGE_BYTES // 4 and len(calls) == self._calls_per_message:
            self._calls_per_message = min(MAX_CALLS_PER_MESSAGE, self._calls_per_message * 2)
        first = self._seq + 1
        self._seq += len(calls)
        request = pb.PartialHistoryRequest(calls_json=encoded, count=len(calls), first_seq=first)
        record = pb.Record(
            request=pb.Request(partial_history=request), control=pb.Control(local=True, seq=self._seq)
        )
        data = record.SerializeToString()
        self._put(_Message(data, len(calls), self._seq, len(data)))

    def _put(self, message: _Message) -> None:
        self._messages_encoded += 1
        self.calls_encoded += message.calls
        with self._lock:
            if message.seq:
                if self._retained_bytes + message.size > self._memory_limit:
                    message = self._spill_or_keep(message)
                if message.data is not None:
                    self._retained_bytes += message.size
                self._retained.append(message)
            self._encoded.put(message)

    def _spill_or_keep(self, message: _Message) -> _Message:
        """Memory is full (called with the lock held): the message goes to the spill file, or,
        if that cannot be written, stays in memory and log() waits for room."""
        assert message.data is not None
        if self._spill is not None:
            try:
                offset = self._spill.append(message.data, message.seq)
            except OSError as exc:
                logger.debug("nbtrack: cannot spill to %s: %s", self._spill.path, exc)
            else:
                self._spilled += 1
                return message._replace(data=None, offset=offset)
        self.full = True
        return message

    # -- the pipe thread -------------------------------------------------------------------

    def _write(self, item: _Message | _Reconnect) -> None:
        if type(item) is _Reconnect:
            self._resend(item)
            return
        message: _Message = item  # type: ignore[assignment]
        # While broken, messages wait in retention for a new process; after a reconnect, those
        # already re-sent from retention are not sent twice.
        if self.broken is None and not 0 < message.seq <= self._resent_through:
            data = self._data(message)
            if data is not None:
                self._send(data)
        with self._progress:
            self._messages_sent += 1
            self.calls_sent += message.calls
            self._progress.notify_all()

    def _written(self) -> None:
        """Everything is written (close()): the pipe and the spill file are not needed any more."""
        self._close_conn()
        if self._spill is not None:
            self._spill.remove()

    def _data(self, message: _Message) -> bytes | None:
        """The message's bytes; None if there is nothing to send: it was spilled and is
        acknowledged, or the spill file lost it (counted and said)."""
        data = message.data
        if data is None:
            assert self._spill is not None
            try:
                data = self._spill.read(message.offset, message.size, message.seq)
            except OSError as exc:
                if message.seq <= self.acknowledged:
                    return None  # the spill file was emptied after its messages were stored
                if not isinstance(exc, SpillDamaged):
                    raise
                self._lose(message, exc)
                return None
        if message.exit and self._lost_seqs:
            return data + _CRASHED
        return data

    def _lose(self, message: _Message, damage: SpillDamaged) -> None:
        """A spilled message cannot be read back: the rows in it are lost. Counted once (a
        reconnect may meet it again) and said once per run."""
        if message.seq in self._lost_seqs:
            return
        self._lost_seqs.add(message.seq)
        self.calls_lost += message.calls
        if self.lost_reason is None:
            self.lost_reason = str(damage)
            self._warn(
                f"{self.lost_reason}: the rows kept there are lost ({self.calls_lost} log() calls so far); "
                "every other row is sent, and the run will end as crashed"
            )

    def _send(self, data: bytes) -> None:
        try:
            self._conn.send_bytes(data)
        except (OSError, ValueError) as exc:  # the internal process is gone (or hung and killed)
            self.broken = f"the internal process stopped reading records ({exc})"
            logger.debug("nbtrack: outbox paused: %s", exc)

    def _resend(self, reconnect: _Reconnect) -> None:
        with self._lock:  # everything encoded so far is retained; what follows comes after it
            again = list(self._retained)
        if again:
            self._resent_through = again[-1].seq
        self._close_conn()  # the dead process's end: only this thread ever wrote to it
        self._conn = reconnect.conn
        self.broken = None
        for preamble in reconnect.preamble:
            self._send(preamble)
        for message in again:
            if self.broken is not None:
                break
            data = self._data(message)
            if data is not None:
                self._send(data)

    def _close_conn(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.close()

    def _died(self, thread: str, exc: BaseException) -> None:
        """A thread of the outbox failed (a bug; the Worker logged it): keep the first failure,
        and make every waiter give up. The user's process goes on."""
        if self.failure is not None:
            return  # the first failure is the one that counts (the other thread may follow it)
        self.failure = f"the {thread} thread failed ({type(exc).__name__}: {exc})"
        self._encoded.close()  # the pipe thread ends once it wrote what it has (the encoder died)
        with self._progress:
            self._progress.notify_all()
        with self._lock:
            self.full = False
            self._room.notify_all()
        self._on_failure(self.failure)


class _Tick:
    def __repr__(self) -> str:
        return "TICK"


_TICK = _Tick()  # the encoder's item: drain the deque now


class _Clock:
    """The encoder's source: a tick every `timeout` seconds, or as soon as `wake` is set."""

    def __init__(self, wake: threading.Event) -> None:
        self._wake = wake
        self._closed = False
        self._last_tick = False  # the drain after close() was given

    def get(self, timeout: float) -> _Tick | _Marker:
        if self._last_tick:
            return END
        if self._closed:  # one last drain that starts after close(): it takes everything queued
            self._last_tick = True
            return _TICK
        self._wake.wait(timeout)
        self._wake.clear()
        return _TICK

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def fail(self, reason: str) -> None:
        """Nobody waits for the encoder: the callers only append to the deque."""

    def __len__(self) -> int:
        return 0


class _EncoderThread(Worker[_Tick]):
    """The "nbtrack-outbox" thread: drains the outbox's deque on each tick of its clock."""

    def __init__(self, outbox: Outbox, clock: _Clock, interval: float) -> None:
        self._outbox = outbox
        self.idle_seconds = interval  # the clock's period
        super().__init__("nbtrack-outbox", clock, outbox._died)

    def handle(self, item: _Tick) -> None:
        self._outbox._encode()

    def finished(self) -> None:
        # After the last drain (close()): nothing more comes for the pipe thread. Only here, so
        # that no message is ever queued after the pipe thread has ended.
        self._outbox._encoded.close()


class _PipeThread(Worker[_Message | _Reconnect]):
    """The "nbtrack-pipe" thread: writes the encoded messages to the internal process's record_q;
    the one thread that switches to a new process's (a reconnect) and closes the old one."""

    idle_seconds = 1.0  # idle() does nothing: a put() or close() wakes it at once

    def __init__(self, outbox: Outbox, inbox: Inbox[_Message | _Reconnect]) -> None:
        self._outbox = outbox
        super().__init__("nbtrack-pipe", inbox, self._died)

    def handle(self, item: _Message | _Reconnect) -> None:
        self._outbox._write(item)

    def finished(self) -> None:
        self._outbox._written()

    def _died(self, thread: str, exc: BaseException) -> None:
        # Nothing will be written any more: the internal process sees EOF, as if this process
        # had ended, and ends the run itself (no other thread writes to the pipe: closing is safe).
        self._outbox._close_conn()
        self._outbox._died(thread, exc)


class SpillDamaged(OSError):
    """A spilled message is not what was written (the file was truncated or overwritten)."""


# Each spilled message: its length, CRC-32 and sequence number, then its bytes. The number
# tells a frame copied over another of the same size from the one that belongs there.
_FRAME = struct.Struct("<IIQ")


class _SpillFile:
    """Retained messages that did not fit in memory, appended, each framed with its length and
    checksum; read back by offset (the offset of the frame, the size of the message)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self.end = 0

    def append(self, data: bytes, seq: int) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        offset = self.end
        framed = _FRAME.pack(len(data), zlib.crc32(data), seq) + data
        done = 0
        while done < len(framed):
            done += os.pwrite(self._fd, framed[done:], offset + done)
        self.end = offset + len(framed)
        return offset

    def read(self, offset: int, size: int, seq: int) -> bytes:
        """Message seq, written at offset; SpillDamaged if the file no longer holds it."""
        assert self._fd is not None
        framed = os.pread(self._fd, _FRAME.size + size, offset)
        if len(framed) != _FRAME.size + size:
            raise SpillDamaged(f"the spill file {self.path} was cut short (at byte {offset + len(framed)})")
        length, crc, number = _FRAME.unpack_from(framed)
        data = framed[_FRAME.size :]
        if length != size or number != seq or zlib.crc32(data) != crc:
            raise SpillDamaged(
                f"the spill file {self.path} does not hold what was written at byte {offset} "
                "(it was cut short or changed by something else)"
            )
        return data

    def empty(self) -> None:
        if self._fd is not None and self.end:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            self.end = 0

    def remove(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
            with contextlib.suppress(OSError):
                self.path.unlink()

"""Hands records to the internal process in call order without ever blocking the caller.

Callers append to one deque: a log() call as a (row, step, commit, timestamp) tuple, a captured
console line as a ConsoleLine, anything else as an already serialized Record. Two named threads
move it on:

- "nbtrack-outbox" drains the deque every few milliseconds (at once when a request waits) and
  encodes it: runs of consecutive log() calls become PartialHistoryRequests of at most
  MAX_CALLS_PER_MESSAGE calls (a small message keeps the handler's working set in cache), runs
  of console lines one ConsoleRecord each (so a chatty cell costs the internal process one
  record per batch, not per line);
- "nbtrack-pipe" writes the encoded messages to record_q, blocking while the internal process
  catches up.

While the internal process is behind, what waits is kept encoded (about 200 bytes a row instead
of a dict), and the user's loop never waits. One encoder and one writer keep the order of appends.

Everything gets a sequence number (each log() call its own) and stays *retained* until the
internal process acknowledges that its writer has it in the transaction log (`acknowledge`).
If that process dies, `reconnect` points the pipe at a new one and sends it every retained
message again, in order; the new process skips what its log already holds. So a row that log()
accepted is never lost with a process.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import orjson

from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["ConsoleLine", "Outbox"]

logger = logging.getLogger("nbtrack")

LogCall = tuple[dict[str, Any], "int | None", bool, float]
FLUSH_INTERVAL = 0.02  # seconds between drains
MAX_CALLS_PER_MESSAGE = 1000


class _Message(NamedTuple):
    data: bytes
    calls: int  # log() calls inside (0 for other records)
    seq: int  # the last sequence number inside; 0: not numbered, not retained (setup, run)


class _Reconnect(NamedTuple):
    conn: Connection
    preamble: list[bytes]  # sent first, unnumbered (the new process's setup)


@dataclass(frozen=True, slots=True)
class ConsoleLine:  # not a tuple, like _Unnumbered
    stream: pb.OutputRecord.Stream.ValueType  # STDOUT or STDERR
    line: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class _Unnumbered:  # not a tuple: the encoder tells log() calls apart by `type(item) is tuple`
    data: bytes


class Outbox:
    """The ordered, non-blocking way into record_q."""

    def __init__(self, record_q: Connection, interval: float = FLUSH_INTERVAL) -> None:
        self._conn = record_q
        self._interval = interval
        self._items: collections.deque[LogCall | bytes | _Unnumbered | ConsoleLine] = collections.deque()
        self._encoded: queue.SimpleQueue[_Message | _Reconnect | None] = queue.SimpleQueue()
        self._seq = 0  # the last sequence number given (encoder thread only)
        # Encoded and not yet acknowledged, oldest first. The lock makes "retained" and "queued
        # for the pipe" change together, so a reconnect re-sends each message exactly once.
        self._retained: collections.deque[_Message] = collections.deque()
        self._lock = threading.Lock()
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
        self.broken: str | None = None  # why the pipe cannot be written (until a reconnect)
        self._encoder = threading.Thread(target=self._encode_loop, name="nbtrack-outbox", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="nbtrack-pipe", daemon=True)
        self._encoder.start()
        self._writer.start()

    def log(self, call: LogCall) -> None:
        """Queue one finite log() call (the hot path: one deque append)."""
        self._items.append(call)

    def console(self, line: ConsoleLine) -> None:
        """Queue one captured console line (sent with its neighbours in one record)."""
        self._items.append(line)

    def send(self, record: pb.Record, *, urgent: bool = False, retain: bool = True) -> None:
        """Queue a record after everything already queued; urgent wakes the encoder now.

        retain=False: not numbered and never re-sent (the setup and run records, which a new
        internal process gets afresh).
        """
        data = record.SerializeToString()  # now: later changes to record do not travel
        self._items.append(data if retain else _Unnumbered(data))
        if urgent:
            self._wake.set()

    @property
    def retained(self) -> int:
        """Messages kept until the internal process acknowledges them."""
        return len(self._retained)

    def calls_not_acknowledged(self) -> int:
        """log() calls the internal process has not acknowledged: retained, or not encoded yet."""
        waiting = sum(1 for item in list(self._items) if type(item) is tuple)
        return waiting + sum(message.calls for message in list(self._retained))

    def acknowledge(self, seq: int) -> None:
        """The internal process's log holds everything up to seq: stop keeping it."""
        with self._lock:
            retained = self._retained
            while retained and retained[0].seq <= seq:
                retained.popleft()
            self.acknowledged = max(self.acknowledged, seq)

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
                if left <= 0 or not self._encoder.is_alive():
                    return False
                self._progress.wait(min(left, 0.05))
                self._wake.set()
        return self.broken is None

    def close(self, timeout: float) -> bool:
        """Write what is queued, then stop both threads; False if something was left behind."""
        flushed = self.flush(timeout)
        self._stopping = True
        self._wake.set()
        self._encoder.join(timeout)
        self._encoded.put(None)
        self._writer.join(timeout)
        return flushed

    # -- the encoder thread ----------------------------------------------------------------

    def _encode_loop(self) -> None:
        # It goes on while the pipe is broken: what it encodes is retained for a new process.
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._drain()
            with self._progress:
                self._cycles += 1
                self._progress.notify_all()

    def _drain(self) -> None:
        items = self._items
        batch: list[Any] = []  # consecutive log() calls, or consecutive console lines
        while items:
            item = items.popleft()
            kind = type(item)
            if kind is tuple or kind is ConsoleLine:
                if batch and type(batch[0]) is not kind:
                    self._put_batch(batch)
                    batch = []
                batch.append(item)
                if len(batch) == MAX_CALLS_PER_MESSAGE:
                    self._put_batch(batch)
                    batch = []
                continue
            if batch:
                self._put_batch(batch)
                batch = []
            if type(item) is _Unnumbered:
                self._put(_Message(item.data, 0, 0))
            else:
                self._seq += 1
                # Appending a serialized message merges it into the one before (protobuf's
                # rule for concatenation): this sets control.seq without parsing the record.
                number = pb.Record(control=pb.Control(seq=self._seq)).SerializeToString()
                self._put(_Message(item + number, 0, self._seq))  # type: ignore[operator]
        if batch:
            self._put_batch(batch)

    def _put_batch(self, batch: list[Any]) -> None:
        if type(batch[0]) is tuple:
            self._put_calls(batch)
        else:
            self._put_lines(batch)

    def _put_lines(self, lines: list[ConsoleLine]) -> None:
        self._seq += 1
        console = pb.ConsoleRecord(
            lines=[pb.OutputRecord(stream=x.stream, line=x.line, timestamp=x.timestamp) for x in lines]
        )
        record = pb.Record(console=console, control=pb.Control(seq=self._seq))
        self._put(_Message(record.SerializeToString(), 0, self._seq))

    def _put_calls(self, calls: list[LogCall]) -> None:
        first = self._seq + 1
        self._seq += len(calls)
        request = pb.PartialHistoryRequest(calls_json=orjson.dumps(calls), count=len(calls), first_seq=first)
        record = pb.Record(
            request=pb.Request(partial_history=request), control=pb.Control(local=True, seq=self._seq)
        )
        self._put(_Message(record.SerializeToString(), len(calls), self._seq))

    def _put(self, message: _Message) -> None:
        self._messages_encoded += 1
        self.calls_encoded += message.calls
        with self._lock:
            if message.seq:
                self._retained.append(message)
            self._encoded.put(message)

    # -- the pipe thread -------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            item = self._encoded.get()
            if item is None:
                return
            if type(item) is _Reconnect:
                self._resend(item)
                continue
            message: _Message = item  # type: ignore[assignment]
            # While broken, messages wait in retention for a new process; after a reconnect,
            # those already re-sent from retention are not sent twice.
            if self.broken is None and not 0 < message.seq <= self._resent_through:
                self._send(message.data)
            with self._progress:
                self._messages_sent += 1
                self.calls_sent += message.calls
                self._progress.notify_all()

    def _send(self, data: bytes) -> None:
        try:
            self._conn.send_bytes(data)
        except (OSError, ValueError) as exc:  # the internal process is gone
            self.broken = f"the internal process stopped reading records ({exc})"
            logger.debug("nbtrack: outbox paused: %s", exc)

    def _resend(self, reconnect: _Reconnect) -> None:
        with self._lock:  # everything encoded so far is retained; what follows comes after it
            again = list(self._retained)
        if again:
            self._resent_through = again[-1].seq
        self._conn = reconnect.conn
        self.broken = None
        for data in reconnect.preamble:
            self._send(data)
        for message in again:
            if self.broken is None:
                self._send(message.data)

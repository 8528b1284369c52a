"""What the outbox's callers queue, and the "nbtrack-outbox" thread that turns it into messages.

Callers append to one deque: a log() call as a bare `LogCall` tuple (an `ExactCall` when its row
holds NaN or infinity), a captured console line as a `ConsoleLine`, any other record as a
`RecordItem`. Every few milliseconds (at once when a request waits) the encoder thread drains
the deque, in order: runs of consecutive log() calls become LogCallsRequests of at most
MAX_CALLS_PER_MESSAGE calls and about MAX_MESSAGE_BYTES (a small message keeps the handler's
working set in cache, and big rows never make a message of hundreds of megabytes), runs of
console lines one ConsoleRecord each (so a chatty cell costs the internal process one record per
batch, not per line). Everything gets a sequence number (each log() call its own) and becomes a
`Message`, which the outbox retains and hands to the pipe thread (pipe.py).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from nbtrack import jsonutil
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.worker import END, OnFatal, Worker, _Marker

__all__ = [
    "FLUSH_INTERVAL",
    "MAX_CALLS_PER_MESSAGE",
    "MAX_MESSAGE_BYTES",
    "ConsoleLine",
    "Encoder",
    "EncoderThread",
    "ExactCall",
    "Item",
    "LogCall",
    "Message",
    "RecordItem",
]

FLUSH_INTERVAL = 0.02  # seconds between drains
MAX_CALLS_PER_MESSAGE = 1000
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # a batch of big rows is cut to messages of about this size

# One finite log() call: (row, step, commit, timestamp), queued as the very tuple Run.log()
# builds. It is the one item not wrapped in a class of its own: log() is the hot path (~3 µs a
# call), and a frozen dataclass around each call costs ~0.25 µs to build, plus an unwrapping per
# call on the encoder's side of the GIL (benchmarks/bench_core.py measured log() ~1 µs slower
# with it). Every other item is a class of its own, so `isinstance(item, tuple)` tells a log()
# call from the rest.
LogCall = tuple[dict[str, Any], "int | None", bool, float]


@dataclass(frozen=True, slots=True)
class ExactCall:
    """A log() call whose row holds NaN or infinity: its batch is encoded by the exact (slower)
    encoder. Everything else about it is a call like any other: numbered, retained, re-sent."""

    call: LogCall


@dataclass(slots=True)  # not frozen: that __init__ costs ~1 µs more per line, on the printing thread
class ConsoleLine:
    stream: pb.OutputRecord.Stream.ValueType  # STDOUT or STDERR
    line: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class RecordItem:
    """A record other than a log() call or a console line, serialized when it was queued (so
    later changes to it do not travel)."""

    data: bytes
    retain: bool = True  # False: not numbered, never re-sent (the setup and run records)
    exit: bool = False  # the exit record: a run that lost calls before it is marked crashed


Item = LogCall | ExactCall | ConsoleLine | RecordItem


@dataclass(frozen=True, slots=True)
class Message:
    """One encoded record on its way to the internal process."""

    data: bytes | None  # None: spilled, at [offset, offset + size) of the spill file
    calls: int  # log() calls inside (0 for other records)
    seq: int  # the last sequence number inside; 0: not numbered, not retained (setup, run)
    size: int
    offset: int = -1
    exit: bool = False  # the exit record: a run that lost calls before it is marked crashed


class Encoder:
    """Turns queued items into Messages, in order, and hands each to `put`. Its state (the last
    sequence number, the calls per message) belongs to the encoder thread alone."""

    def __init__(self, put: Callable[[Message], None]) -> None:
        self._put = put
        self.seq = 0  # the last sequence number given
        self._calls_per_message = MAX_CALLS_PER_MESSAGE  # fewer while rows are big

    def drain(self, items: deque[Item]) -> None:
        """Encode everything in items, taking it out as it goes."""
        batch: list[Any] = []  # consecutive log() calls, or consecutive console lines
        lines = False  # the batch holds console lines (else log() calls)
        exact = False  # a call of the batch needs the exact encoder
        while items:
            item = items.popleft()
            # A log() call, nearly every item: one isinstance, before the match, which would cost
            # each call ~70 ns more (a class pattern is the slower test, measured on CPython 3.11).
            if isinstance(item, tuple):
                if lines and batch:
                    self._put_batch(batch, lines, exact)
                    batch, exact = [], False
                lines = False
                batch.append(item)
            else:
                match item:
                    case ExactCall(call):
                        if lines and batch:
                            self._put_batch(batch, lines, exact)
                            batch, exact = [], False
                        lines, exact = False, True
                        batch.append(call)
                    case ConsoleLine():
                        if batch and not lines:
                            self._put_batch(batch, lines, exact)
                            batch, exact = [], False
                        lines = True
                        batch.append(item)
                    case RecordItem():
                        if batch:
                            self._put_batch(batch, lines, exact)
                            batch, exact = [], False
                        self._put_record(item)
                        continue
            if len(batch) >= self._calls_per_message:
                self._put_batch(batch, lines, exact)
                batch, exact = [], False
        if batch:
            self._put_batch(batch, lines, exact)

    def _put_record(self, item: RecordItem) -> None:
        if not item.retain:
            self._put(Message(item.data, 0, 0, len(item.data)))
            return
        self.seq += 1
        # Appending a serialized message merges it into the one before (protobuf's rule for
        # concatenation): this sets control.seq without parsing the record.
        data = item.data + pb.Record(control=pb.Control(seq=self.seq)).SerializeToString()
        self._put(Message(data, 0, self.seq, len(data), exit=item.exit))

    def _put_batch(self, batch: list[Any], lines: bool, exact: bool) -> None:
        if lines:
            self._put_lines(batch)
        else:
            self._put_calls(batch, exact)

    def _put_lines(self, lines: list[ConsoleLine]) -> None:
        self.seq += 1
        console = pb.ConsoleRecord(
            lines=[pb.OutputRecord(stream=x.stream, line=x.line, timestamp=x.timestamp) for x in lines]
        )
        data = pb.Record(console=console, control=pb.Control(seq=self.seq)).SerializeToString()
        self._put(Message(data, 0, self.seq, len(data)))

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
        first = self.seq + 1
        self.seq += len(calls)
        request = pb.LogCallsRequest(calls_json=encoded, count=len(calls), first_seq=first)
        record = pb.Record(
            request=pb.Request(log_calls=request), control=pb.Control(local=True, seq=self.seq)
        )
        data = record.SerializeToString()
        self._put(Message(data, len(calls), self.seq, len(data)))


# -- the encoder thread --------------------------------------------------------------------


class _Tick:
    def __repr__(self) -> str:
        return "TICK"


_TICK = _Tick()  # the encoder's item: drain the deque now


class Clock:
    """The encoder thread's source: a tick every `timeout` seconds, or as soon as `wake` is set."""

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


class EncoderThread(Worker[_Tick]):
    """The "nbtrack-outbox" thread: `drain` on each tick of its clock, then, after the last one
    (close()), `finished`."""

    def __init__(
        self,
        clock: Clock,
        interval: float,
        drain: Callable[[], None],
        finished: Callable[[], None],
        on_fatal: OnFatal,
    ) -> None:
        self._drain = drain
        self._after_last_drain = finished
        self.idle_seconds = interval  # the clock's period
        super().__init__("nbtrack-outbox", clock, on_fatal)

    def handle(self, item: _Tick) -> None:
        self._drain()

    def finished(self) -> None:
        self._after_last_drain()

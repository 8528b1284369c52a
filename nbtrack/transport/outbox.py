"""Hands records to the internal process in call order without ever blocking the caller.

Callers append to one deque: a log() call as a (row, step, commit, timestamp) tuple, anything
else as an already serialized Record. Two named threads move it on:

- "nbtrack-outbox" drains the deque every few milliseconds (at once when a request waits) and
  encodes it: runs of consecutive log() calls become PartialHistoryRequests of at most
  MAX_CALLS_PER_MESSAGE calls (a small message keeps the handler's working set in cache);
- "nbtrack-pipe" writes the encoded messages to record_q, blocking while the internal process
  catches up.

While the internal process is behind, what waits is kept encoded (about 200 bytes a row instead
of a dict), and the user's loop never waits. One encoder and one writer keep the order of appends.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import orjson

from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["Outbox"]

logger = logging.getLogger("nbtrack")

LogCall = tuple[dict[str, Any], "int | None", bool, float]
FLUSH_INTERVAL = 0.02  # seconds between drains
MAX_CALLS_PER_MESSAGE = 1000


class Outbox:
    """The ordered, non-blocking way into record_q."""

    def __init__(self, record_q: Connection, interval: float = FLUSH_INTERVAL) -> None:
        self._conn = record_q
        self._interval = interval
        self._items: collections.deque[LogCall | bytes] = collections.deque()
        self._encoded: queue.SimpleQueue[tuple[bytes, int] | None] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stopping = False
        self._progress = threading.Condition()
        self._cycles = 0  # completed drains; flush() waits for one that began after it was called
        self._messages_encoded = 0
        self._messages_sent = 0
        self.calls_encoded = 0
        self.calls_sent = 0
        self.broken: str | None = None  # why the pipe can no longer be written
        self._encoder = threading.Thread(target=self._encode_loop, name="nbtrack-outbox", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="nbtrack-pipe", daemon=True)
        self._encoder.start()
        self._writer.start()

    def log(self, call: LogCall) -> None:
        """Queue one finite log() call (the hot path: one deque append)."""
        self._items.append(call)

    def send(self, record: pb.Record, *, urgent: bool = False) -> None:
        """Queue a record after everything already queued; urgent wakes the encoder now."""
        self._items.append(record.SerializeToString())
        if urgent:
            self._wake.set()

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
        while not self._stopping and self.broken is None:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._drain()
            with self._progress:
                self._cycles += 1
                self._progress.notify_all()

    def _drain(self) -> None:
        items = self._items
        calls: list[LogCall] = []
        while items:
            item = items.popleft()
            if type(item) is tuple:
                calls.append(item)
                if len(calls) == MAX_CALLS_PER_MESSAGE:
                    self._put_calls(calls)
                    calls = []
                continue
            if calls:
                self._put_calls(calls)
                calls = []
            self._put(item, 1)  # type: ignore[arg-type]
        if calls:
            self._put_calls(calls)

    def _put_calls(self, calls: list[LogCall]) -> None:
        request = pb.PartialHistoryRequest(calls_json=orjson.dumps(calls), count=len(calls))
        record = pb.Record(request=pb.Request(partial_history=request), control=pb.Control(local=True))
        self._put(record.SerializeToString(), len(calls))

    def _put(self, message: bytes, calls: int) -> None:
        self._messages_encoded += 1
        self.calls_encoded += calls
        self._encoded.put((message, calls))

    # -- the pipe thread -------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            item = self._encoded.get()
            if item is None:
                return
            message, calls = item
            try:
                self._conn.send_bytes(message)
            except (OSError, ValueError) as exc:  # the internal process is gone
                self.broken = f"the internal process stopped reading records ({exc})"
                logger.debug("nbtrack: outbox stopped: %s", exc)
                self._items.clear()  # nothing will read them; Run counts later rows as lost
            with self._progress:
                self._messages_sent += 1
                self.calls_sent += calls
                self._progress.notify_all()
            if self.broken is not None:
                return

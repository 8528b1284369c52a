"""Hands records to the internal process in call order without ever blocking the caller.

Callers append to one deque: a log() call as a (row, step, commit, timestamp) tuple, anything
else as an already serialized Record. A single named thread drains it every few milliseconds
(at once when a request is waiting), packs runs of consecutive log() calls into one
PartialHistoryRequest and writes to record_q. That thread is the only writer of the pipe, so
order is the order of appends, and a slow internal process slows the thread, not the user.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import orjson

from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["Outbox"]

logger = logging.getLogger("nbtrack")

LogCall = tuple[dict[str, Any], "int | None", bool, float]
FLUSH_INTERVAL = 0.02  # seconds between drains: batches of thousands of rows at full speed


class Outbox:
    """The ordered, non-blocking way into record_q."""

    def __init__(self, record_q: Connection, interval: float = FLUSH_INTERVAL) -> None:
        self._conn = record_q
        self._interval = interval
        self._items: collections.deque[LogCall | bytes] = collections.deque()
        self._wake = threading.Event()
        self._stopping = False
        self._drained = threading.Condition()
        self._cycles = 0  # completed drains; flush() waits for one that began after it was called
        self.calls_sent = 0
        self.broken: str | None = None  # why the pipe can no longer be written
        self._thread = threading.Thread(target=self._loop, name="nbtrack-outbox", daemon=True)
        self._thread.start()

    def log(self, call: LogCall) -> None:
        """Queue one finite log() call (the hot path: one deque append)."""
        self._items.append(call)

    def send(self, record: pb.Record, *, urgent: bool = False) -> None:
        """Queue a record after everything already queued; urgent wakes the thread now."""
        self._items.append(record.SerializeToString())
        if urgent:
            self._wake.set()

    def pending(self) -> int:
        return len(self._items)

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is written to the pipe; False on timeout."""
        deadline = time.monotonic() + timeout
        target = self._cycles + 2  # the drain in progress may have started before our items
        self._wake.set()
        with self._drained:
            while self._cycles < target and self.broken is None:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._drained.wait(min(left, 0.05))
                self._wake.set()
        return self.broken is None

    def close(self, timeout: float) -> bool:
        """Write what is queued, then stop the thread; False if something was left behind."""
        flushed = self.flush(timeout)
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        return flushed

    def _loop(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._drain()
            except (OSError, ValueError) as exc:  # the internal process is gone
                self.broken = f"the internal process stopped reading records ({exc})"
                logger.debug("nbtrack: outbox stopped: %s", exc)
                with self._drained:
                    self._drained.notify_all()
                return
            with self._drained:
                self._cycles += 1
                self._drained.notify_all()

    def _drain(self) -> None:
        items = self._items
        calls: list[LogCall] = []
        while items:
            item = items[0]
            if type(item) is tuple:
                calls.append(items.popleft())  # type: ignore[arg-type]
                continue
            if calls:
                self._send_calls(calls)
                calls = []
            self._conn.send_bytes(item)  # type: ignore[arg-type]
            items.popleft()  # only once written: flush() waits for an empty deque
        if calls:
            self._send_calls(calls)

    def _send_calls(self, calls: list[LogCall]) -> None:
        request = pb.Request(
            partial_history=pb.PartialHistoryRequest(calls_json=orjson.dumps(calls), count=len(calls))
        )
        self._conn.send_bytes(pb.Record(request=request, control=pb.Control(local=True)).SerializeToString())
        self.calls_sent += len(calls)

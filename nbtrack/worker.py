"""The one shape of every background thread of nbtrack, in the user process and in the internal
process alike.

A `Worker` is a named thread that takes items from its source and handles them one at a time.
The source is an `Inbox` (a bounded FIFO), or anything else that implements `Source`: the
sender's `Feed`, a pipe to read (`PipeSource`), a clock that ticks, or nothing at all until it
is closed (`Until`: the worker's work is its idle()).

- `put()` waits while the inbox is full (backpressure reaches the stage before it), but never
  for a stage that is gone: once the worker died it raises `StageDied` at once.
- `flush(timeout)` waits until everything put so far is handled and returns how many items are
  still pending (0: all done), in the spirit of sentry-python's background worker.
- `stop(timeout)` puts a sentinel behind what is queued and joins; until the deadline passes,
  `stopping()` tells a handle() that waits (for disk space, for a store) how long it may go on.
- An exception escaping handle(), idle() or finished() is a fault nobody planned for. It is
  logged (ERROR, with its traceback) unless it is one of the worker's `quiet_failures` (no
  fault of its own), and `on_fatal(name, exc)` runs, which decides what the failure means. In the
  internal process that ends the process (main.py), so the user side restarts it and the new
  one recovers the run from its log; online delivery only stops (the log keeps the rows for
  `nbtrack sync`). In the user process, which is the user's, it never ends anything: the
  failure is recorded where the run looks for it, and every waiter wakes. A thread that silently
  died would instead leave the one before it blocked.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Generic, Protocol, TypeVar

from nbtrack import faults
from nbtrack.errors import NbtrackError

__all__ = [
    "EMPTY",
    "END",
    "Inbox",
    "OnFatal",
    "PipeSource",
    "Queue",
    "Source",
    "StageDied",
    "Until",
    "Worker",
    "failure_text",
]

logger = logging.getLogger("nbtrack")

Item = TypeVar("Item")
Item_co = TypeVar("Item_co", covariant=True)
OnFatal = Callable[[str, BaseException], None]


class StageDied(NbtrackError):
    """The stage an item was handed to is gone (its thread failed)."""


def failure_text(thread: str, exc: BaseException) -> str:
    """What to say of a thread that failed: "the X thread failed (Error: why)"; a StageDied is
    no cause of its own, so it says the failure of the stage it fed, which it names."""
    if isinstance(exc, StageDied):
        return str(exc)
    return f"the {thread} thread failed ({type(exc).__name__}: {exc})"


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


EMPTY = _Marker("EMPTY")  # get() timed out: nothing to handle yet
END = _Marker("END")  # get(): the inbox is closed and drained


class Source(Protocol[Item_co]):
    """What a Worker takes its items from: an `Inbox`, the sender's `Feed`, or a source of its
    own (the user side's result pipe, the outbox's clock)."""

    def get(self, timeout: float) -> Item_co | _Marker:
        """The next item, EMPTY after timeout seconds without one, END once closed and drained."""

    def close(self) -> None:
        """No more items: get() returns END once the ones queued are taken."""

    def fail(self, reason: str) -> None:
        """The consumer is gone: producers waiting for room (and later ones) raise StageDied."""

    def __len__(self) -> int:
        """Items waiting."""


class Queue:
    """What every Source shares: one condition that producers and the consumer wait on, the
    close switch (no more items: get() returns END once drained) and the fail switch (the
    consumer is gone: producers raise StageDied instead of waiting for room)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._closed = False
        self._dead: str | None = None

    def close(self) -> None:
        with self._cond:
            self._closed = True  # the sentinel: it takes no room, so stop() never waits for any
            self._cond.notify_all()

    def fail(self, reason: str) -> None:
        with self._cond:
            self._dead = reason
            self._cond.notify_all()

    def _raise_if_dead(self) -> None:
        """Called with the condition held, by a producer."""
        if self._dead is not None:
            raise StageDied(self._dead)


class Inbox(Queue, Generic[Item]):
    """A FIFO bounded in items; put() waits for room, but never for a consumer that is gone."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit
        self._items: deque[Item] = deque()

    def put(self, item: Item) -> None:
        with self._cond:
            while len(self._items) >= self._limit and self._dead is None:
                self._cond.wait()
            self._raise_if_dead()
            self._items.append(item)
            self._cond.notify_all()

    def get(self, timeout: float) -> Item | _Marker:
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()  # room for a waiting put()
                return item
            return END if self._closed else EMPTY

    def __len__(self) -> int:
        return len(self._items)


class Until:
    """A source of no items, only time passing, until `closed` is set (by close() or by whoever
    owns the event): a worker over it does its work in idle(), every idle_seconds."""

    def __init__(self, closed: threading.Event | None = None) -> None:
        self._closed = threading.Event() if closed is None else closed

    def get(self, timeout: float) -> _Marker:
        return END if self._closed.wait(timeout) else EMPTY

    def close(self) -> None:
        self._closed.set()

    def fail(self, reason: str) -> None:
        """Nobody hands the worker anything: there is no producer to tell."""

    def __len__(self) -> int:
        return 0


class PipeSource:
    """The read end of a pipe to another process as a source: get() polls, then reads one message.
    EOF (the process at the other end is gone) ends it, and `eof` says that is how it ended."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._closed = False
        self.eof = False

    def get(self, timeout: float) -> bytes | _Marker:
        if self._closed or self.eof:
            return END
        try:
            if not self._conn.poll(timeout):
                return EMPTY
            return self._conn.recv_bytes()
        except (EOFError, OSError):
            self.eof = True
            with contextlib.suppress(OSError):
                self._conn.close()  # nothing more can come from a process that is gone
            return END

    def close(self) -> None:
        """The worker stops at its next get() (the pipe stays open: it is not the worker's)."""
        self._closed = True

    def fail(self, reason: str) -> None:
        """Nobody hands the worker anything: the other process writes to the pipe, not to it."""

    def __len__(self) -> int:
        return 0


class Worker(Generic[Item]):
    """Subclasses implement handle(item), and may implement idle() and finished().

    The subclass's __init__ calls Worker.__init__ last: it starts the thread.
    """

    idle_seconds = 0.05  # how often idle() runs when nothing arrives
    # Exceptions that may escape this worker without being its fault, which its on_fatal expects:
    # not logged here (the Handler's StageDied: the stage it feeds failed, and says so itself).
    quiet_failures: tuple[type[BaseException], ...] = ()

    def __init__(self, name: str, inbox: Source[Item], on_fatal: OnFatal) -> None:
        self.name = name
        self._inbox = inbox
        self._on_fatal = on_fatal
        self._fault = faults.planned(name.lower())  # test-only fault injection; None in real runs
        self._cond = threading.Condition()
        self._busy = False  # an item is being handled
        self._deadline: float | None = None  # set by stop(): waiting in handle() must end by then
        self._abandon = threading.Event()  # stop waiting at once (a shutdown after a timeout)
        self.failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- the producer's side ---------------------------------------------------------------

    def flush(self, timeout: float) -> int:
        """Wait up to timeout seconds until everything put so far is handled; items still pending."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (len(self._inbox) or self._busy) and self.failed is None:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    break
                self._cond.wait(min(left, self.idle_seconds))
            return len(self._inbox) + (1 if self._busy else 0)

    def is_alive(self) -> bool:
        """The thread runs: it has neither finished (after stop()) nor failed."""
        return self._thread.is_alive()

    def stop(self, timeout: float) -> bool:
        """Handle what is queued, then end the thread; False if it did not end within timeout."""
        self.expire(timeout)
        self._inbox.close()
        return self.join(timeout)

    def join(self, timeout: float | None) -> bool:
        """Wait up to timeout (None: as long as it takes) for the thread to end (its inbox closed
        by whoever feeds it)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def expire(self, timeout: float) -> None:
        """Whatever handle() waits for, it waits at most timeout seconds more."""
        deadline = time.monotonic() + timeout
        if self._deadline is None or deadline < self._deadline:
            self._deadline = deadline

    def abandon(self) -> None:
        """Whatever handle() waits for, stop waiting for it now (what is left stays undone)."""
        self._abandon.set()

    def stopping(self) -> float | None:
        """Seconds a handle() that waits may still wait: None (no limit) until stop(), then what is
        left before its deadline (0.0 once it passed or after abandon())."""
        if self._abandon.is_set():
            return 0.0
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def wait_or_stop(self, seconds: float) -> bool:
        """Sleep up to seconds (less if stop() leaves less); True if the worker should give up waiting."""
        left = self.stopping()
        if left is not None and left <= 0.0:
            return True
        self._abandon.wait(seconds if left is None else min(seconds, left))
        left = self.stopping()
        return left is not None and left <= 0.0

    # -- the worker's side -----------------------------------------------------------------

    def handle(self, item: Item) -> None:
        raise NotImplementedError

    def idle(self) -> None:
        """Called after each item and whenever idle_seconds pass without one."""

    def finished(self) -> None:
        """Called on the thread once the inbox is drained after stop()."""

    def _run(self) -> None:
        inbox, fault = self._inbox, self._fault
        try:
            while True:
                item = inbox.get(self.idle_seconds)
                if item is END:
                    break
                if not isinstance(item, _Marker):  # EMPTY: nothing came in time
                    self._busy = True
                    self.handle(item)
                    if fault is not None:
                        fault.tick()
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
                self.idle()
            self.finished()
        except BaseException as exc:
            self.failed = exc
            inbox.fail(failure_text(self.name, exc))
            with self._cond:
                self._busy = False
                self._cond.notify_all()
            if not isinstance(exc, self.quiet_failures):
                logger.error("nbtrack: the %s thread failed", self.name, exc_info=exc)
            self._on_fatal(self.name, exc)

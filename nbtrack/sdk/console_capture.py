"""A script's console capture: what `python train.py` prints while its runs are live, as lines.

Why the `write` of sys.stdout and sys.stderr is wrapped, and file descriptors 1 and 2 are not
redirected through a pipe (W&B calls these "wrap" and "redirect"): a pipe would also catch what C
extensions and subprocesses write, but it puts a reader thread of ours between the process and
the user's terminal. Whatever that thread has not yet copied to the terminal when the process
dies hard (a segfault in a C extension, os._exit, SIGKILL) is lost to the terminal too, and that
is the output that explains the crash; a child that outlives the run keeps writing into a pipe
whose reader is gone; and fd 1 stops being a terminal, so C code and subprocesses switch to full
buffering and drop their colours and progress bars. Wrapping `write` costs one Python call per
write, leaves the terminal's bytes, order and timing exactly as they were (the original write
runs first, then the text is copied), and undoes exactly. What it misses is written below
Python's text streams: `sys.stdout.buffer`, C code writing to fd 1 or 2, subprocesses.

The `write` of the stream object itself is replaced (an instance attribute over the class's
method), not `sys.stdout` the name: a `logging.StreamHandler` or a module that took
`sys.stderr` before the run started holds that same object, so its output is captured too.
`print()`, `writelines()` and `logging` all call it. Each stream's text goes through a
`LineAssembler` (console_format.py, the notebook capture's own): `\\r` redraws keep only a
line's final state. Lines go to every run attached at the time (runs started one after another,
or side by side); the streams are restored when the last one finishes, or right away in a
forked child. A notebook's streams (ipykernel's, with an `echo`) are left to the extension's
capture (extension/console.py), so nothing is captured twice there.

Bounded cost: a line goes into the run's outbox like a log() call (batched into one record per
drain, spilled to disk past NBTRACK_MAX_MEMORY_MB). The only memory not bounded there is the
outbox's queue of items not yet encoded, which a flood of print() calls could outgrow; past
MAX_BACKLOG items lines are not kept until it has drained to half, and the gap is said, in the
run's console where it happened and in a warning at finish(). Nothing blocks the script.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nbtrack.console_format import LineAssembler

__all__ = ["MAX_BACKLOG", "attach", "attached", "detach"]

STREAMS = ("stdout", "stderr")
MAX_BACKLOG = 200_000  # items in a run's outbox not yet encoded: past it, lines are not kept
MAX_PIECES = 256  # writes without a line end held before they are fed to the assembler
CHECK_EVERY = 512  # lines between two looks at the backlog (a look costs a few calls)

Sink = Callable[[str, str, float], None]  # stream ("stdout" or "stderr"), line, timestamp
logger = logging.getLogger("nbtrack")


@dataclass
class _Subscriber:
    """One run's end of the capture."""

    sink: Sink
    backlog: Callable[[], int]
    warn: Callable[[str], None]
    lines: int = 0
    dropping: bool = False
    gap: int = 0  # lines not kept since the last one kept
    dropped: int = 0  # lines not kept, in all

    def take(self, stream: str, lines: list[str], timestamp: float) -> None:
        for line in lines:
            self.lines += 1
            if self.lines % CHECK_EVERY == 0:
                self._look(timestamp)
            if self.dropping:
                self.gap += 1
                self.dropped += 1
            else:
                self.sink(stream, line, timestamp)

    def _look(self, timestamp: float) -> None:
        backlog = self.backlog()
        if not self.dropping and backlog > MAX_BACKLOG:
            self.dropping = True
        elif self.dropping and backlog <= MAX_BACKLOG // 2:
            self.dropping = False
            self.say_gap(timestamp)

    def say_gap(self, timestamp: float) -> None:
        """Mark where lines are missing, in the run's own console."""
        if self.gap:
            self.sink("stderr", _gap_line(self.gap), timestamp)
            self.gap = 0


def _gap_line(lines: int) -> str:
    return (
        f"[nbtrack: {lines:,} console lines printed here were not kept: the script printed them "
        "faster than they could be queued]"
    )


@dataclass
class _Patch:
    """The wrapped `write` of one stream object, and what to put back."""

    stream: Any
    wrapper: Callable[[str], Any]
    previous: Any  # the instance attribute `write` had before (another tool's patch), or None
    active: bool = field(default=True)

    def restore(self) -> None:
        self.active = False  # if it cannot be unhooked, the wrapper only passes writes on
        instance = getattr(self.stream, "__dict__", {})
        if instance.get("write") is not self.wrapper:
            return  # someone wrapped it after us: theirs stays, and calls ours, which now passes
        if self.previous is None:
            del self.stream.write
        else:
            self.stream.write = self.previous


class ScriptConsole:
    """The process's one capture of sys.stdout and sys.stderr, shared by its live runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # The thread delivering lines now, if any: what it writes meanwhile (nbtrack's own
        # warnings) is not captured, so it cannot loop back. Only that thread sets it to its
        # own id, so reading it without the lock is safe.
        self._delivering: int | None = None
        self._subscribers: dict[int, _Subscriber] = {}
        self._assemblers = {name: LineAssembler() for name in STREAMS}
        self._pieces: dict[str, list[str]] = {name: [] for name in STREAMS}  # written, not yet fed
        self._patches: list[_Patch] = []
        self._failed = False  # a failing sink is said once, not once per line

    def attach(self, key: int, sink: Sink, backlog: Callable[[], int], warn: Callable[[str], None]) -> bool:
        """Start copying lines to sink; False if this process's streams are not a script's."""
        with self._lock:
            if not self._patches:
                self._install()
            if not self._patches:
                return False
            self._subscribers[key] = _Subscriber(sink, backlog, warn)
            return True

    def attached(self, key: int) -> bool:
        return key in self._subscribers

    def detach(self, key: int) -> None:
        """Stop copying lines to key's sink, after handing it the unfinished lines; the streams
        are restored when no run is left."""
        with self._lock:
            subscriber = self._subscribers.pop(key, None)
            if subscriber is None:
                return
            now = time.time()
            last = not self._subscribers
            self._delivering = threading.get_ident()
            try:
                for name in STREAMS:
                    lines = self._feed(name, "")
                    if lines:
                        subscriber.take(name, lines, now)
                    assembler = self._assemblers[name]
                    line = assembler.flush() if last else assembler.partial()
                    if line is not None:
                        subscriber.take(name, [line], now)
                subscriber.say_gap(now)
            except Exception:
                self._sink_failed()
            finally:
                self._delivering = None
            if last:
                self._uninstall()
        if subscriber.dropped:
            subscriber.warn(
                f"{subscriber.dropped:,} console lines were not kept: the script printed them faster "
                f"than they could be queued (more than {MAX_BACKLOG:,} waiting); the run's console "
                "marks where they were"
            )

    def after_fork_in_child(self) -> None:
        """A forked child's output is its own: its parent's runs do not capture it."""
        self._lock = threading.Lock()  # a lock held by another thread at fork() stays held
        self._subscribers.clear()
        self._uninstall()

    def _install(self) -> None:
        for name in STREAMS:
            stream = getattr(sys, name)
            if stream is None or hasattr(stream, "echo"):
                continue  # none (pythonw), or ipykernel's: the notebook capture's own
            if any(patch.stream is stream for patch in self._patches):
                continue  # sys.stderr = sys.stdout: one object, captured once (as stdout)
            patch = self._patch(name, stream)
            if patch is not None:
                self._patches.append(patch)

    def _patch(self, name: str, stream: Any) -> _Patch | None:
        original = stream.write
        take = self._take
        pieces = self._pieces[name]

        def write(text: str) -> Any:
            written = original(text)  # the user's terminal first, exactly as before
            if patch.active and text.__class__ is str:
                # print("loss", x) is four writes, one of them the newline: the pieces of a
                # line are only appended (atomic under the GIL) until a write ends it.
                if "\n" in text or "\r" in text or len(pieces) >= MAX_PIECES:
                    take(name, text)
                else:
                    pieces.append(text)
            return written

        patch = _Patch(stream, write, getattr(stream, "__dict__", {}).get("write"))
        try:
            stream.write = write
        except (AttributeError, TypeError):  # an object without instance attributes
            logger.debug("nbtrack: sys.%s (%s) cannot be captured", name, type(stream).__name__)
            return None
        return patch

    def _uninstall(self) -> None:
        for patch in self._patches:
            patch.restore()
        self._patches.clear()
        for assembler in self._assemblers.values():
            assembler.flush()
        for pieces in self._pieces.values():
            pieces.clear()

    def _take(self, name: str, text: str) -> None:
        """What was written to stream name (after the pieces before it); never raises into the
        user's print()."""
        if self._delivering == threading.get_ident():
            return
        try:
            with self._lock:
                lines = self._feed(name, text)
                if lines and self._subscribers:
                    # Under the lock: lines of every thread reach the runs in the order written.
                    self._delivering = threading.get_ident()
                    try:
                        timestamp = time.time()
                        for subscriber in self._subscribers.values():
                            subscriber.take(name, lines, timestamp)
                    finally:
                        self._delivering = None
        except Exception:
            self._sink_failed()

    def _feed(self, name: str, text: str) -> list[str]:
        """The lines text completes, after the pieces written before it (caller holds the lock)."""
        pieces = self._pieces[name]
        if pieces:
            taken = len(pieces)  # another thread may append meanwhile: only these are removed
            text = "".join(pieces[:taken]) + text
            del pieces[:taken]
        return self._assemblers[name].feed(text)

    def _sink_failed(self) -> None:
        if not self._failed:
            self._failed = True
            before, self._delivering = self._delivering, threading.get_ident()
            try:
                logger.exception("nbtrack: console capture failed; lines may be missing from the run")
            finally:
                self._delivering = before


_console = ScriptConsole()
os.register_at_fork(after_in_child=_console.after_fork_in_child)


def attach(key: object, sink: Sink, backlog: Callable[[], int], warn: Callable[[str], None]) -> bool:
    """Copy what this process prints (while key is attached) to sink, line by line. backlog: the
    run's items waiting to be encoded; warn: how to tell the user of lines not kept."""
    return _console.attach(id(key), sink, backlog, warn)


def attached(key: object) -> bool:
    return _console.attached(id(key))


def detach(key: object) -> None:
    """Hand key's sink the unfinished lines and stop; output after this is not its."""
    _console.detach(id(key))

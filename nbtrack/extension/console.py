"""Console capture: what the kernel's stdout and stderr print while a run is live, as lines.

ipykernel's streams (`OutStream`) copy every write to their `echo` stream when one is set, from
any thread, before anything else happens to it; a `_Tap` set there sees all output and leaves
the cell's own output unchanged (an echo the kernel had already is still written to). Patching
`write` instead would not hold: IPython re-wraps `write` around every cell and restores it
after. Each stream's text goes through a `LineAssembler` (console_format.py, shared with a
script's capture, sdk/console_capture.py), which keeps lines the way a terminal shows them.
Complete lines go to `sink(stream, line, timestamp)` (KernelTracker hands them to each live
run). A write made while the sink runs on the same thread is not captured, so nbtrack's
own output cannot loop back into it. Streams without an `echo` (a plain terminal) are left alone.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from nbtrack.console_format import MAX_LINE, LineAssembler

__all__ = ["MAX_LINE", "ConsoleCapture", "LineAssembler"]

STREAMS = ("stdout", "stderr")

Sink = Callable[[str, str, float], None]
logger = logging.getLogger("nbtrack")


class ConsoleCapture:
    """Copies the lines written to sys.stdout and sys.stderr to sink until uninstall()."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._in_sink = threading.local()
        self._assemblers = {name: LineAssembler() for name in STREAMS}
        self._taps: list[tuple[Any, _Tap]] = []
        self._active = True
        self._failed = False  # a failing sink is reported once, not once per line

    def install(self) -> None:
        for name in STREAMS:
            stream = getattr(sys, name)
            if not hasattr(stream, "echo"):
                continue
            tap = _Tap(self, name, stream.echo)
            stream.echo = tap
            self._taps.append((stream, tap))

    def uninstall(self) -> None:
        self.flush()
        self._active = False
        for stream, tap in self._taps:
            if stream.echo is tap:
                stream.echo = tap.previous
        self._taps.clear()

    def flush(self) -> None:
        """Hand over unfinished lines (a cell ended, or a run is finishing)."""
        now = time.time()
        with self._lock:
            pending = [(name, self._assemblers[name].flush()) for name in STREAMS]
        for name, line in pending:
            if line is not None:
                self._deliver(name, [line], now)

    def write(self, name: str, text: str) -> None:
        """Called by the tap of stream name with what was written to it."""
        if not self._active or not text or getattr(self._in_sink, "active", False):
            return
        with self._lock:
            lines = self._assemblers[name].feed(text)
        if lines:
            self._deliver(name, lines, time.time())

    def _deliver(self, name: str, lines: list[str], timestamp: float) -> None:
        self._in_sink.active = True
        try:
            for line in lines:
                self._sink(name, line, timestamp)
        except Exception:  # a capture problem must never break the user's print()
            if not self._failed:
                self._failed = True
                logger.exception("nbtrack: console capture failed; lines may be missing from the run")
        finally:
            self._in_sink.active = False


class _Tap:
    """What an OutStream's `echo` is while capture is on: it passes writes to the capture (and
    to the echo that was there before, if any). It must never raise into the user's print()."""

    def __init__(self, capture: ConsoleCapture, name: str, previous: Any) -> None:
        self.capture, self.name, self.previous = capture, name, previous

    def write(self, text: str) -> int:
        if self.previous is not None:
            self.previous.write(text)
        if isinstance(text, str):
            self.capture.write(self.name, text)
        return len(text)

    def flush(self) -> None:
        if self.previous is not None:
            self.previous.flush()

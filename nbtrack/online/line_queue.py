"""Lines on their way to a server (history, console), addressed by line number.

History lines stay in memory up to a bound; beyond it they are read back from the log. During a
long outage a fast loop would otherwise pile every row up in the internal process's
memory. The writer has already put each line in the transaction log before the sender sees it,
so past MAX_MEMORY_ROWS / MAX_MEMORY_BYTES the queue keeps only the line numbers and reads the
lines back from the log when their turn comes: the log is the buffer. Once the backlog is
delivered, new lines are kept in memory again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from nbtrack.txlog import iter_records

__all__ = ["LineQueue"]

MAX_MEMORY_ROWS = 200_000
MAX_MEMORY_BYTES = 64 << 20


class LineQueue:
    """Lines offset.. not yet taken for a post; safe to use from two threads.

    log_path: the run's transaction log, whose history records are these lines; without it
    (console lines) every line stays in memory.
    """

    def __init__(
        self,
        log_path: Path | None = None,
        max_rows: int = MAX_MEMORY_ROWS,
        max_bytes: int = MAX_MEMORY_BYTES,
    ) -> None:
        self._lock = threading.Lock()
        self._log = _LogLines(log_path) if log_path is not None else None
        self._max_rows, self._max_bytes = max_rows, max_bytes
        self._lines: list[str] = []  # in memory: lines _offset.._offset+len-1
        self._offset = 0
        self._bytes = 0
        self._spilled: tuple[int, int] | None = None  # lines [start, end) that only the log holds
        self.lines_read_back = 0  # how many lines came from the log (for tests and benchmarks)

    @property
    def end(self) -> int:
        """The line after the last one added."""
        with self._lock:
            return self._spilled[1] if self._spilled else self._offset + len(self._lines)

    def __len__(self) -> int:
        with self._lock:
            spilled = self._spilled[1] - self._spilled[0] if self._spilled else 0
            return len(self._lines) + spilled

    @property
    def nbytes(self) -> int:
        """Bytes waiting (lines only in the log are counted at the average size of those in memory)."""
        with self._lock:
            if not self._spilled:
                return self._bytes
            average = self._bytes / len(self._lines) if self._lines else 100
            return self._bytes + int(average * (self._spilled[1] - self._spilled[0]))

    def add(self, offset: int, lines: list[str]) -> None:
        """Lines offset..; offsets must follow on from the previous call's."""
        with self._lock:
            end = self._spilled[1] if self._spilled else self._offset + len(self._lines)
            if not self._lines and not self._spilled:
                end = self._offset = offset
            if offset != end:
                raise ValueError(f"lines at {offset} do not follow on from line {end}")
            if self._spilled:
                self._spilled = (self._spilled[0], end + len(lines))
                return
            self._lines.extend(lines)
            self._bytes += sum(map(len, lines))
            full = len(self._lines) >= self._max_rows or self._bytes >= self._max_bytes
            if full and self._log is not None:
                after = self._offset + len(self._lines)
                self._spilled = (after, after)

    def take(self, max_lines: int, max_bytes: int) -> tuple[int, list[str]]:
        """The next lines to post (offset, lines): from memory first, then read back from the log."""
        with self._lock:
            if self._lines:
                return self._take_from_memory(max_lines, max_bytes)
            if not self._spilled or self._spilled[0] == self._spilled[1]:
                self._spilled = None
                return self._offset, []
            start, end = self._spilled
        assert self._log is not None
        lines = self._log.read(start, min(end - start, max_lines))  # outside the lock: it is slow
        with self._lock:
            assert self._spilled is not None
            self._spilled = (start + len(lines), self._spilled[1])
            self.lines_read_back += len(lines)
            if self._spilled[0] == self._spilled[1]:  # caught up: keep new lines in memory again
                self._offset, self._spilled = self._spilled[0], None
            return start, lines

    def _take_from_memory(self, max_lines: int, max_bytes: int) -> tuple[int, list[str]]:
        taken, size = 0, 0
        for line in self._lines:
            if taken and (taken >= max_lines or size + len(line) > max_bytes):
                break
            taken += 1
            size += len(line)
        chunk, offset = self._lines[:taken], self._offset
        del self._lines[:taken]
        self._offset += taken
        self._bytes -= size
        return offset, chunk


class _LogLines:
    """History lines of a transaction log by line number, read in order with one pass kept open."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lines: Iterator[tuple[int, str]] | None = None
        self._next = 0  # the line number the open pass yields next

    def read(self, first: int, count: int) -> list[str]:
        """Lines first..first+count-1 (fewer if the log does not hold them yet)."""
        if self._lines is None or first < self._next:
            self._lines, self._next = self._history(), 0
        out: list[str] = []
        for number, text in self._lines:
            self._next = number + 1
            if number >= first:
                out.append(text)
                if len(out) == count:
                    return out
        self._lines = None  # the pass reached the end of what is written: start a new one next time
        return out

    def _history(self) -> Iterator[tuple[int, str]]:
        number = 0
        for record in iter_records(self._path):
            if record.WhichOneof("record_type") == "history":
                yield number, record.history.data_json.decode()
                number += 1

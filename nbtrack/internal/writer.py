"""The writer: appends every persisted record to the transaction log and hands it to the sender.

The writer never waits for the sender: records go to the sender's `Feed` in memory while its
backlog is small, and past that as byte ranges of the log the sender reads back (feed.py). So a
locked store or an unreachable server never stops the log, nor the acknowledgements below.

The handler queues acknowledgement marks (`mark`): once the log's bytes up to where a mark was
queued are handed to the OS, the writer tells the user side (`ack`), which then stops keeping
those messages for a restart. Only bytes really written count: while the disk is full, nothing
past them is acknowledged.

When the log cannot be written (disk full, I/O error) the writer keeps the unwritten bytes,
tries again every RETRY_SECONDS, and says so once when it stops and once when it goes on
(trouble.py). Meanwhile records still reach the sender in memory (the store may be on another
disk). Past MAX_UNWRITTEN bytes the writer waits for space instead of growing: backpressure
reaches the handler, the pipe and the user side's outbox, where nothing is acknowledged yet.

A restarted process reopens the log (`open(..., recover=True)`) and hands the sender the whole
reopened log as one range to read back, before anything new.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from nbtrack import run_lock
from nbtrack.internal.feed import Feed, HistoryLines, Item
from nbtrack.internal.progress import LogProgress
from nbtrack.internal.trouble import SPACE, Trouble, is_out_of_space
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.txlog import FILE_HEADER, LogReader, LogWriter
from nbtrack.worker import Inbox, OnFatal, Worker

__all__ = ["MAX_UNWRITTEN", "WriterThread"]

logger = logging.getLogger("nbtrack")

FLUSH_SECONDS = 0.02  # hand buffered bytes to the OS this often: a killed process loses nothing
SYNC_SECONDS = 1.0  # fsync this often: a power loss loses at most this much
RETRY_SECONDS = 1.0  # how often a log that could not be written is tried again
MAX_UNWRITTEN = 32 << 20  # bytes kept for a log that cannot be written, before the writer waits
INBOX_BATCHES = 4  # batches (of up to 1,000 rows) waiting for the writer
_CRASH_COULD_LOSE = "; rows still go to the store, but a crash could now lose them"


class _Open(NamedTuple):
    setup: pb.SetupRequest
    records: int  # recovering: records the log holds (numbering goes on after them)
    lines: int  # recovering: history rows the log holds


@dataclass(frozen=True, slots=True)
class _Mark:
    """Acknowledge seq to the user side once everything put before it is handed to the OS."""

    seq: int


_Item = list[pb.Record] | _Open | _Mark


class WriterThread(Worker[_Item]):
    """Runs on the thread named "Writer"; hands records to the sender through `feed`."""

    idle_seconds = FLUSH_SECONDS

    def __init__(
        self,
        feed: Feed,
        trouble: Trouble,
        ack: Callable[[int], None],
        on_fatal: OnFatal,
        progress: LogProgress | None = None,
    ) -> None:
        self._feed = feed
        self._trouble = trouble
        self._ack = ack
        self.progress = progress if progress is not None else LogProgress()
        self._marks: deque[tuple[int, int]] = deque()  # (seq, log offset it waits for)
        self._line_ends: deque[int] = deque()  # log offsets where appended, unwritten history rows end
        self._log: LogWriter | None = None
        self._reader: LogReader | None = None
        self._lock_fd: int | None = None
        self._closing = False  # the exit record is in: close the log once everything is written
        self.path: Path | None = None
        self.records_written = 0
        self._offline = False
        self._last_flush = self._last_sync = self._last_retry = time.monotonic()
        self._queue = Inbox[_Item](INBOX_BATCHES)  # the Worker's source, kept with its own type
        super().__init__("Writer", self._queue, on_fatal)

    def put(self, item: _Item) -> None:
        """Hand over work; waits while the writer's inbox is full (backpressure)."""
        self._queue.put(item)

    def open(self, setup: pb.SetupRequest, *, records: int = 0, lines: int = 0) -> None:
        """Tell the sender where the run goes, and create the log at setup.log_path (recover:
        reopen it after its last intact record) before the records put after this call. Offline,
        only records flagged always_send (those that need a reply) reach the sender."""
        self._offline = setup.mode == "offline"
        self.put(_Open(setup, records, lines))

    def mark(self, seq: int) -> None:
        """Acknowledge the user side's seq once what was put before is handed to the OS."""
        self.put(_Mark(seq))

    # -- the writer thread -----------------------------------------------------------------

    def handle(self, item: _Item) -> None:
        match item:
            case _Mark(seq):
                log = self._log
                self._marks.append((seq, 0 if log is None else log.bytes_written))
            case _Open():
                self._open(item)
            case records:
                self._write_records(records)

    def _write_records(self, records: list[pb.Record]) -> None:
        self._wait_for_room()
        log = self._log
        start = log.bytes_written if log is not None else 0
        logged: list[pb.Record] = []
        unlogged: list[pb.Record] = []
        lines: list[bytes] = []  # a batch of rows only (the common case) goes as HistoryLines
        steps: list[int] = []
        ends = self._line_ends
        size = 0
        for record in records:
            if record.HasField("history"):
                size += self._append(record)
                if log is not None:
                    ends.append(log.bytes_written)
                history = record.history
                lines.append(history.data_json)
                steps.append(history.step)
            # HasField first: reading an unset sub-message builds one, and history rows have none.
            elif record.HasField("control") and record.control.local:
                unlogged.append(record)
                continue
            else:
                size += self._append(record)
            logged.append(record)
        span = None if log is None else (start, log.bytes_written)
        if logged and logged[-1].HasField("exit"):
            self._finish_log()  # the log is complete (if the disk takes it) before the sender ends the run
        if self._offline:  # the sender only answers what waits for a reply
            self._push([r for r in logged if r.HasField("control") and r.control.always_send], 0, None)
        elif len(lines) == len(logged):
            self._push(HistoryLines(lines, steps), size, span)
        else:
            self._push(logged, size, span)
        self._push(unlogged, 0, None)

    def _push(self, item: Item, size: int, span: tuple[int, int] | None) -> None:
        if item.lines if isinstance(item, HistoryLines) else item:
            self._feed.push(item, size, span)

    def idle(self) -> None:
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_SECONDS:
            self._last_flush = now
            self._flush()
            self._acknowledge()
        if now - self._last_sync >= SYNC_SECONDS:
            self._last_sync = now
            if self.progress.failing is None:
                self._write(lambda log: log.sync())
            self._check_still_there()

    def finished(self) -> None:
        """The process is ending: one last try to write what is left, then close if it worked
        (if it did not, the bytes left are not acknowledged: the user side still has them)."""
        self._write(lambda log: log.sync())
        self._acknowledge()
        log = self._log
        if log is not None and log.bytes_buffered == 0:
            self._close()

    # -- the log -----------------------------------------------------------------------------

    def _open(self, item: _Open) -> None:
        setup = item.setup
        # The setup travels to the sender as its first record: where the run goes.
        first = pb.Record(request=pb.Request(setup=setup), control=pb.Control(local=True))
        self._feed.push([first], 0, None)
        if not setup.log_path:
            return
        path = self.path = Path(setup.log_path)
        self.progress.path = str(path)
        self.records_written = item.records
        try:
            if setup.recover and path.exists():
                # Held until this process exits, however it exits: resuming or restarting the
                # run waits for it. Taken before reopening: the dead writer must be gone.
                self._lock_fd = run_lock.hold(path)
                self._log = LogWriter.open_for_append(path)
                self._reader = LogReader(path)
                self._feed.attach(self._reader)
                end = self._log.bytes_flushed
                self._feed.flushed(end)
                self.progress.lines_logged = item.lines
                # The sender delivers the reopened log again (idempotently), read back from it.
                if end > len(FILE_HEADER):
                    self._feed.push_range(len(FILE_HEADER), end, item.records)
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            self._log = LogWriter.create(path)
            _fsync_dir(path.parent)  # the new file's name must survive a power loss too
            self._lock_fd = run_lock.hold(path)
            self._reader = LogReader(path)
            self._feed.attach(self._reader)
        except OSError as exc:
            self._log = None
            self.progress.lost = f"cannot create the transaction log {path}: {_strerror(exc)}"
            logger.error("nbtrack: %s", self.progress.lost)
            self._trouble.failing("log", "log-lost", self.progress.lost + _CRASH_COULD_LOSE)
            return
        self._append(pb.Record(header=pb.HeaderRecord(version=_version(), timestamp=time.time())))
        self._flush()

    def _append(self, record: pb.Record) -> int:
        """Append one record (numbered); its serialized size."""
        log = self._log
        if log is None:
            return 0
        self.records_written += 1
        record.num = self.records_written
        payload = record.SerializeToString()
        try:
            log.append(payload)  # may write to the OS (past 256 KiB buffered): that may fail
        except OSError as exc:
            self._failing(exc)  # the record is buffered all the same: kept for the retry
        return len(payload)

    def _flush(self) -> None:
        """Hand buffered bytes to the OS; while the log is failing, only every RETRY_SECONDS."""
        log = self._log
        if log is None:
            return
        if self.progress.failing is not None:
            now = time.monotonic()
            if now - self._last_retry < RETRY_SECONDS:
                return
            self._last_retry = now
        self._write(lambda log: log.flush())

    def _write(self, action: Callable[[LogWriter], object]) -> bool:
        """Run a flush or sync; True if it worked. Publishes how far the log got either way."""
        log = self._log
        if log is None:
            return False
        try:
            action(log)
            ok = True
        except OSError as exc:
            self._failing(exc)
            ok = False
        self._written(log)
        if ok and self.progress.failing is not None and log.bytes_buffered == 0:
            self.progress.failing = None
            self._trouble.recovered("log", f"the transaction log {self.path} is written again")
        if ok and self._closing and log.bytes_buffered == 0:
            self._close()
        return ok

    def _written(self, log: LogWriter) -> None:
        """Publish the rows now handed to the OS; the sender may read back up to a whole flush."""
        flushed = log.bytes_flushed
        ends = self._line_ends
        lines = 0
        while ends and ends[0] <= flushed:
            ends.popleft()
            lines += 1
        if lines:
            self.progress.lines_logged += lines
        self.progress.bytes_unsynced = flushed - log.bytes_synced
        if log.bytes_buffered == 0:  # a record boundary: what the sender may read back up to
            self._feed.flushed(flushed)

    def _failing(self, exc: OSError) -> None:
        if self.progress.failing is None:
            self._last_retry = time.monotonic()
        reason = _strerror(exc)
        self.progress.failing = reason
        space = is_out_of_space(exc)
        logger.debug("nbtrack: cannot write the transaction log %s", self.path, exc_info=exc)
        self._trouble.failing(
            "log",
            SPACE if space else "log",
            f"cannot write the transaction log {self.path}: {reason}; "
            + ("waiting for space" if space else "trying again every second")
            + " (rows not yet in it are kept in memory and acknowledged only once written)",
            f"the transaction log {self.path}",
        )

    def _wait_for_room(self) -> None:
        """Past MAX_UNWRITTEN unwritten bytes, wait for the log to take some (until stop() gives up)."""
        log = self._log
        while log is not None and log.bytes_buffered > MAX_UNWRITTEN:
            if self.wait_or_stop(RETRY_SECONDS):
                return  # the process is ending: keep what is left for the final try
            self._last_retry = 0.0
            self._flush()
            self._acknowledge()

    def _acknowledge(self) -> None:
        log = self._log
        written = log.bytes_flushed if log is not None else None
        marks = self._marks
        seq = 0
        while marks and (written is None or marks[0][1] <= written):
            seq = marks.popleft()[0]
        # Without a log (it could not be created) there is nothing better to wait for: the user
        # was told once that a crash could now lose rows.
        if seq:
            self._ack(seq)

    def _finish_log(self) -> None:
        """After the exit record: append final + footer; close once everything is written."""
        self._append(pb.Record(final=pb.FinalRecord()))
        self._append(pb.Record(footer=pb.FooterRecord(timestamp=time.time())))
        self._closing = True
        self._last_retry = 0.0
        self._write(lambda log: log.sync())
        self._acknowledge()

    def _close(self) -> None:
        log = self._log
        if log is None:
            return
        try:
            log.close()
        except OSError as exc:  # the fsync failed: the file is closed all the same
            self._failing(exc)
        self._written(log)
        self._log = None  # marks after this are acknowledged at once: everything is written
        self._closing = False

    def _check_still_there(self) -> None:
        """A removed log (or run folder) still takes writes on Linux, into a file nobody can
        read: say so once."""
        if self._log is None or self.progress.lost is not None or self._lock_fd is None:
            return
        try:
            gone = os.fstat(self._lock_fd).st_nlink == 0
        except OSError:
            gone = True
        if gone:
            self.progress.lost = f"the transaction log {self.path} was deleted (or its folder was)"
            logger.error("nbtrack: %s", self.progress.lost)
            self._trouble.failing("log-file", "log-lost", self.progress.lost + _CRASH_COULD_LOSE)


def _strerror(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _version() -> str:
    from nbtrack import __version__

    return __version__

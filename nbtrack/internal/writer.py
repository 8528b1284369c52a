"""The writer: appends every persisted record to the transaction log, then passes it to the sender.

Records reach the sender only after they are in the log (written to the OS; fsynced at least
every SYNC_SECONDS and at exit), so whatever the sender loses, the log can replay.

The handler also queues acknowledgement marks (`ack`): once the records before a mark are
handed to the OS, the writer tells the user side (`ack` callback), which then stops keeping
them for a restart. A restarted process reopens the log (`open(..., recover=True)`) and
passes what the log already held to the sender as it is (`replay`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from nbtrack import run_lock
from nbtrack.internal.txlog import LogWriter
from nbtrack.internal.worker import QueueWorker
from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["WriterThread"]

logger = logging.getLogger("nbtrack")

FLUSH_SECONDS = 0.02  # hand buffered bytes to the OS this often: a killed process loses nothing
SYNC_SECONDS = 1.0  # fsync this often: a power loss loses at most this much


class _Open(NamedTuple):
    path: Path
    recover: bool
    records: int  # recovering: records the log holds (numbering goes on after them)


class _Replay(NamedTuple):
    records: list[pb.Record]


_Item = list[pb.Record] | _Open | _Replay | int  # an int is an acknowledgement mark


class WriterThread(QueueWorker[_Item]):
    """Runs on the thread named "Writer"; `forward` is the sender's input."""

    idle_seconds = FLUSH_SECONDS

    def __init__(
        self,
        forward: Callable[[list[pb.Record]], None],
        notice: Callable[[str], None],
        ack: Callable[[int], None] = lambda seq: None,
    ) -> None:
        self._forward = forward
        self._notice = notice
        self._ack = ack
        self._ack_due = 0  # the newest mark whose records are appended (flushed at the next flush)
        self._ack_sent = 0
        self._log: LogWriter | None = None
        self._lock_fd: int | None = None
        self.path: Path | None = None
        self.records_written = 0
        self.failed: str | None = None
        self._offline = False
        self._last_flush = self._last_sync = time.monotonic()
        super().__init__("Writer")

    @property
    def bytes_pending(self) -> int:
        """Bytes written to the log but not yet fsynced."""
        log = self._log
        return 0 if log is None else log.bytes_written - log.bytes_synced

    def open(self, path: Path, *, offline: bool = False, recover: bool = False, records: int = 0) -> None:
        """Create the log at path (recover: reopen it after its last intact record) before the
        records put after this call. Offline, only records flagged always_send (those that need
        a reply) reach the sender.
        """
        self._offline = offline
        self.put(_Open(path, recover, records))

    def replay(self, records: list[pb.Record]) -> None:
        """Pass records the log already holds to the sender, in order with everything else."""
        self.put(_Replay(records))

    def mark(self, seq: int) -> None:
        """Acknowledge the user side's seq once what was put before is handed to the OS."""
        self.put(seq)

    def handle(self, item: _Item) -> None:
        if type(item) is int:
            self._ack_due = item
            return
        if isinstance(item, _Open):
            self.records_written = item.records
            self._open(item.path, item.recover)
            return
        if isinstance(item, _Replay):
            self._forward_records(item.records)
            return
        records: list[pb.Record] = item  # type: ignore[assignment]
        for record in records:
            # HasField first: reading an unset sub-message builds one, and history rows have none.
            if not (record.HasField("control") and record.control.local):
                self._append(record)
                if record.HasField("exit"):
                    self._finish_log()
        self._forward_records(records)

    def _forward_records(self, records: list[pb.Record]) -> None:
        if self._offline:
            records = [r for r in records if r.HasField("control") and r.control.always_send]
        if records:
            self._forward(records)

    def idle(self) -> None:
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_SECONDS:
            self._last_flush = now
            self._guard(lambda log: log.flush())
            # Without a log (it could not be written) there is nothing better to wait for: the
            # user was told once that a crash could now lose rows.
            if self._ack_due > self._ack_sent:
                self._ack_sent = self._ack_due
                self._ack(self._ack_due)
        if now - self._last_sync >= SYNC_SECONDS:
            self._last_sync = now
            self._guard(lambda log: log.sync())
            self._check_still_there()

    def _check_still_there(self) -> None:
        """A removed log (or run folder) still takes writes on Linux, into a file nobody can
        read: say so once, like a write error."""
        if self._log is None or self.failed is not None or self._lock_fd is None:
            return
        try:
            gone = os.fstat(self._lock_fd).st_nlink == 0
        except OSError:
            gone = True
        if gone:
            self.failed = f"the transaction log {self.path} was deleted (or its folder was)"
            logger.error("nbtrack: %s", self.failed)
            self._notice(self.failed + "; rows still go to the store, but a crash could now lose them")

    def finished(self) -> None:
        self._guard(lambda log: log.close())

    def _open(self, path: Path, recover: bool) -> None:
        self.path = path
        try:
            if recover and path.exists():
                # Held until this process exits, however it exits: resuming or restarting the
                # run waits for it. Taken before reopening: the dead writer must be gone.
                self._lock_fd = run_lock.hold(path)
                self._log = LogWriter.open_for_append(path)
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            self._log = LogWriter.create(path)
            _fsync_dir(path.parent)  # the new file's name must survive a power loss too
            self._lock_fd = run_lock.hold(path)
        except OSError as exc:
            self.failed = f"cannot create the transaction log {path}: {exc}"
            self._notice(self.failed + "; rows still go to the store, but a crash could now lose them")
            return
        self._append(pb.Record(header=pb.HeaderRecord(version=_version(), timestamp=time.time())))

    def _append(self, record: pb.Record) -> None:
        self.records_written += 1
        record.num = self.records_written
        payload = record.SerializeToString()
        self._guard(lambda log: log.append(payload))

    def _finish_log(self) -> None:
        """After the exit record: make everything durable, then mark the log complete."""
        self._guard(lambda log: log.sync())
        self._append(pb.Record(final=pb.FinalRecord()))
        self._append(pb.Record(footer=pb.FooterRecord(timestamp=time.time())))
        self._guard(lambda log: log.close())
        self._log = None

    def _guard(self, action: Callable[[LogWriter], object]) -> None:
        """Disk errors (full, folder removed) are reported once; the run goes on to the sender."""
        if self._log is None or self.failed is not None:
            return
        try:
            action(self._log)
        except OSError as exc:
            self.failed = (
                f"cannot write the transaction log {self.path}: {os.strerror(exc.errno or 0) or exc}"
            )
            logger.error("nbtrack: %s", self.failed)
            self._notice(self.failed + "; rows still go to the store, but a crash could now lose them")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _version() -> str:
    from nbtrack import __version__

    return __version__

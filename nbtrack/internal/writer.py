"""The writer: appends every persisted record to the transaction log, then passes it to the sender.

Records reach the sender only after they are in the log (written to the OS; fsynced at least
every SYNC_SECONDS and at exit), so whatever the sender loses, the log can replay.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from nbtrack import run_lock
from nbtrack.internal.txlog import LogWriter
from nbtrack.internal.worker import QueueWorker
from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["WriterThread"]

logger = logging.getLogger("nbtrack")

FLUSH_SECONDS = 0.02  # hand buffered bytes to the OS this often: a killed process loses nothing
SYNC_SECONDS = 1.0  # fsync this often: a power loss loses at most this much


class WriterThread(QueueWorker["list[pb.Record] | Path"]):
    """Runs on the thread named "Writer"; `forward` is the sender's input."""

    idle_seconds = FLUSH_SECONDS

    def __init__(self, forward: Callable[[list[pb.Record]], None], notice: Callable[[str], None]) -> None:
        self._forward = forward
        self._notice = notice
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

    def open(self, path: Path, *, offline: bool = False) -> None:
        """Create the log at path before the records put after this call.

        Offline, only records flagged always_send (those that need a reply) reach the sender.
        """
        self._offline = offline
        self.put(path)

    def handle(self, item: list[pb.Record] | Path) -> None:
        if isinstance(item, Path):
            self._open(item)
            return
        records = item
        for record in records:
            # HasField first: reading an unset sub-message builds one, and history rows have none.
            if not (record.HasField("control") and record.control.local):
                self._append(record)
                if record.HasField("exit"):
                    self._finish_log()
        if self._offline:
            records = [r for r in records if r.HasField("control") and r.control.always_send]
        if records:
            self._forward(records)

    def idle(self) -> None:
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_SECONDS:
            self._last_flush = now
            self._guard(lambda log: log.flush())
        if now - self._last_sync >= SYNC_SECONDS:
            self._last_sync = now
            self._guard(lambda log: log.sync())

    def finished(self) -> None:
        self._guard(lambda log: log.close())

    def _open(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._log = LogWriter.create(path)
            _fsync_dir(path.parent)  # the new file's name must survive a power loss too
            # Held until this process exits, however it exits: resuming the run waits for it.
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

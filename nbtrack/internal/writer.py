"""The writer: appends every persisted record to the transaction log, then passes it to the sender.

Records reach the sender only after they are in the log (written to the OS; fsynced at least
every SYNC_SECONDS and at exit), so whatever the sender loses, the log can replay.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from nbtrack.internal.txlog import LogWriter
from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["WriterThread"]

logger = logging.getLogger("nbtrack")

FLUSH_SECONDS = 0.02  # hand buffered bytes to the OS this often: a killed process loses nothing
SYNC_SECONDS = 1.0  # fsync this often: a power loss loses at most this much
QUEUE_BATCHES = 4  # batches (of up to 1,000 records) waiting for the writer thread


class WriterThread:
    """Runs on the thread named "Writer"; `forward` is the sender's input (None: no sender)."""

    def __init__(self, forward: Callable[[list[pb.Record]], None], notice: Callable[[str], None]) -> None:
        self._forward = forward
        self._notice = notice
        self._log: LogWriter | None = None
        self.path: Path | None = None
        self.records_written = 0
        self.failed: str | None = None
        self._offline = False
        # Bounded for the same reason as the sender's queue: backpressure, not memory growth.
        self._queue: queue.Queue[list[pb.Record] | Path | None] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._thread = threading.Thread(target=self._loop, name="Writer", daemon=True)
        self._thread.start()

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
        self._queue.put(path)

    def _open(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._log = LogWriter.create(path)
            _fsync_dir(path.parent)  # the new file's name must survive a power loss too
        except OSError as exc:
            self.failed = f"cannot create the transaction log {path}: {exc}"
            self._notice(self.failed + "; rows still go to the store, but a crash could now lose them")
            return
        self._append(pb.Record(header=pb.HeaderRecord(version=_version(), timestamp=time.time())))

    def put(self, records: list[pb.Record]) -> None:
        self._queue.put(records)

    def stop(self, timeout: float) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        last_flush = last_sync = time.monotonic()
        while True:
            try:
                records = self._queue.get(timeout=FLUSH_SECONDS)
            except queue.Empty:
                records = []
            if records is None:
                break
            if isinstance(records, Path):
                self._open(records)
                continue
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
            now = time.monotonic()
            if now - last_flush >= FLUSH_SECONDS:
                last_flush = now
                self._guard(lambda log: log.flush())
            if now - last_sync >= SYNC_SECONDS:
                last_sync = now
                self._guard(lambda log: log.sync())
        self._guard(lambda log: log.close())

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

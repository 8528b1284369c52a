"""The run's "nbtrack-media" thread: writes the image and table files of logged rows off the
caller's thread, bounded in bytes."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbtrack.sdk.media import PreparedFile
from nbtrack.worker import Inbox, StageDied, Worker, failure_text

__all__ = ["MAX_WAITING_BYTES", "MediaWriter", "RunMedia"]

MAX_WAITING_BYTES = 256 * 2**20  # snapshots waiting for the media thread before log() waits for it


class MediaWriter(Worker[tuple[str, PreparedFile]]):
    """The run's "nbtrack-media" thread (a `Worker` over an inbox of files to write): encodes and
    writes media files into the run's files folder (each whole or not at all), then announces each
    with `deliver(name)` (a FilesRecord). Created with the run's first image or table.

    Snapshots waiting for it are bounded: while more than MAX_WAITING_BYTES wait, submit() (and so
    log() of more media) waits for the thread to catch up, rather than memory growing without end.
    A file that cannot be written is said (warn) and skipped. Should the thread itself fail (a
    bug), that is said once, no call waits for it any more, and later files are said and skipped.
    """

    idle_seconds = 1.0  # idle() does nothing: a submit() or stop() wakes it at once

    def __init__(self, files_dir: Path, deliver: Callable[[str], None], warn: Callable[[str], None]) -> None:
        self._files_dir = files_dir
        self._deliver = deliver
        self._warn = warn
        self._pending = 0  # files submitted and not yet written
        self._waiting_bytes = 0
        self._idle = threading.Condition()
        self.failure: str | None = None  # the thread failed: nothing is written any more
        # The bound is in bytes (above), not in files: the inbox never makes submit() wait.
        self._jobs: Inbox[tuple[str, PreparedFile]] = Inbox(sys.maxsize)
        super().__init__("nbtrack-media", self._jobs, self._died)

    def submit(self, jobs: list[tuple[str, PreparedFile]]) -> None:
        left = list(jobs)
        with self._idle:
            # Never waits for an empty queue: one snapshot larger than the bound still goes through.
            self._idle.wait_for(self._has_room)
            while left and self.failure is None:
                try:
                    self._jobs.put(left[0])
                except StageDied:  # it failed just now: its on_fatal is on its way
                    break
                self._pending += 1
                self._waiting_bytes += left.pop(0)[1].nbytes
        reason = self.failure or f"the {self.name} thread failed"
        for name, _ in left:
            self._warn(f"could not write media file {name}: {reason}")

    @property
    def pending(self) -> int:
        """Files submitted and not yet written and announced."""
        return self._pending

    def _has_room(self) -> bool:
        return self._pending == 0 or self._waiting_bytes < MAX_WAITING_BYTES or self.failure is not None

    def drain(self, timeout: float) -> bool:
        """Wait until every submitted file is written and announced; False on timeout (or if the
        thread failed)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0 or self.failure is not None, timeout) and (
                self._pending == 0
            )

    def handle(self, item: tuple[str, PreparedFile]) -> None:
        name, prepared = item
        try:
            target = self._files_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(prepared.write())
            partial.replace(target)
            self._deliver(name)
        except Exception as exc:
            self._warn(f"could not write media file {name}: {type(exc).__name__}: {exc}")
        finally:
            with self._idle:
                self._pending -= 1
                self._waiting_bytes -= prepared.nbytes
                self._idle.notify_all()

    def _died(self, thread: str, exc: BaseException) -> None:
        """The thread failed (a bug; the Worker logged it): say so once and wake every waiter."""
        with self._idle:
            self.failure = failure_text(thread, exc)
            self._idle.notify_all()
        self._warn(f"media files are no longer written: {self.failure}")


class RunMedia:
    """A run's media files: log() names each (`name_files`) as it queues the row, the
    "nbtrack-media" thread (started with the first) writes them."""

    def __init__(self, files_dir: Path, deliver: Callable[[str], None], warn: Callable[[str], None]) -> None:
        self._files_dir, self._deliver, self._warn = files_dir, deliver, warn
        self.writer: MediaWriter | None = None
        self._count = 0  # files named so far (a part of each name)
        self.last_image: tuple[str, Any] | None = None  # (file name, uint8 pixels) of the newest image

    def name_files(self, row: dict[str, Any]) -> list[tuple[str, PreparedFile]]:
        """Give each media file of row its name and put its reference in the row (media.py)."""
        files = []
        for key, value in row.items():
            if type(value) is PreparedFile:
                name = value.file_name(key, self._count)
                self._count += 1
                reference = dict(value.reference)
                row[key] = {"_type": reference.pop("_type"), "path": name, **reference}
                files.append((name, value))
                if value.preview is not None:
                    self.last_image = (name, value.preview)
        return files

    def write(self, files: list[tuple[str, PreparedFile]]) -> None:
        if self.writer is None:
            self.writer = MediaWriter(self._files_dir, self._deliver, self._warn)
        self.writer.submit(files)

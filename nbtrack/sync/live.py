"""Is a run still being written? `nbtrack sync` must not deliver a live run's log as if it had ended.

The internal process of a live run holds an flock on its log for as long as it lives (`run_lock`),
and the OS drops it when that process dies however it dies; resume waits on the same lock. A
resumed run's earlier segments sit in sibling folders, and the run is live while any of their
logs is locked. `/proc/locks` says which process holds a lock, so the refusal can name it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from nbtrack import run_lock
from nbtrack.sync.scan import run_id_of, segment_folder

__all__ = ["lock_holder", "segment_logs", "wait_until_not_live"]


def segment_logs(log: Path) -> list[Path]:
    """The logs of every segment of log's run in the folder holding its run folder, oldest first
    (just log, if it does not lie in a run folder)."""
    found = segment_folder(log)
    run_id = run_id_of(log)
    if found is None or run_id is None:
        return [log]
    logs = [
        path
        for path in log.parent.parent.glob(f"run-*-{run_id}/run-{run_id}.nbt")
        if segment_folder(path) is not None and run_id_of(path) == run_id
    ]
    return sorted({*logs, log}, key=lambda path: path.parent.name)


def wait_until_not_live(log: Path, timeout: float, on_wait: Callable[[Path], None]) -> Path | None:
    """Wait up to timeout seconds until no process holds the lock of log or of its run's other
    segments; None then, else the log still locked. on_wait hears of each log waited for."""
    deadline = time.monotonic() + timeout
    for path in segment_logs(log):
        left = max(0.0, deadline - time.monotonic())
        if not run_lock.wait_until_released(path, left, partial(on_wait, path)):
            return path
    return None


def lock_holder(path: Path) -> str | None:
    """The process holding an flock on path, as "process PID (NAME)", if /proc/locks says."""
    try:
        stat = os.stat(path)
        locks = Path("/proc/locks").read_text()
    except OSError:
        return None
    device = (os.major(stat.st_dev), os.minor(stat.st_dev))
    for line in locks.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF" (major and minor in hex)
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            pid = int(fields[4])
            if (int(major, 16), int(minor, 16), int(inode)) != (*device, stat.st_ino):
                continue
        except ValueError:
            continue
        return f"process {pid}{_name(pid)}"
    return None


def _name(pid: int) -> str:
    try:
        return f" ({Path(f'/proc/{pid}/comm').read_text().strip()})"
    except OSError:
        return ""

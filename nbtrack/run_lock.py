"""The lock an internal process holds on its run's transaction log for as long as it lives.

flock locks belong to an open file and the OS drops them when the process exits, however it
exits (SIGKILL, OOM). So "nobody holds the lock" means "no process is still writing or
delivering this log", which is what resuming a run must wait for.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["hold", "wait_until_released"]


def hold(path: Path) -> int:
    """Lock path until this process exits; returns the descriptor (never closed on purpose)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def wait_until_released(path: Path, timeout: float, on_wait: Callable[[], None] | None = None) -> bool:
    """True once no process holds path's lock (or path is gone); False after timeout seconds.

    on_wait is called once, if the lock is held at the first look.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        deadline = time.monotonic() + timeout
        first = True
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return True
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                return False
            if first and on_wait is not None:
                on_wait()
            first = False
            time.sleep(0.05)
    finally:
        os.close(fd)

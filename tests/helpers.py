"""Small helpers for tests that read what a run stored."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from nbtrack.store import Store


def stored_run(root: Path, run_id: str, project: str = "test") -> Any:
    with Store.at_root(root) as store:
        return store.get_run(None, project, run_id)


def stored_history(root: Path, run_id: str, project: str = "test") -> list[dict[str, Any]]:
    with Store.at_root(root) as store:
        return store.read_history("local", project, run_id)


class Locker(threading.Thread):
    """Holds an EXCLUSIVE lock on the SQLite file through a connection of its own, for seconds."""

    def __init__(self, db: Path, seconds: float) -> None:
        super().__init__(name="store-locker", daemon=True)
        self.db, self.seconds = db, seconds
        self.locked, self.released = threading.Event(), threading.Event()
        self._release = threading.Event()

    def stop_now(self) -> None:
        """Release the lock before its time is up."""
        self._release.set()
        self.join(30)

    def run(self) -> None:
        conn = sqlite3.connect(self.db, isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            self.locked.set()
            self._release.wait(self.seconds)
            conn.execute("COMMIT")
        finally:
            conn.close()
            self.released.set()

"""Opening a SQLite store without write access: a reader on a read-only disk, a snapshot, a folder
of someone else's runs.

A normal open writes: it creates missing tables and switches the database to WAL. A read-only
connection (`mode=ro`) does neither, but reading a WAL database needs its `-shm` index, which
SQLite creates beside the file if the folder lets it. Where it cannot:

- without a `-wal` file holding commits, the database file is the whole store and cannot change
  under a reader that nobody can write beside: it opens `immutable`, with no index or locks;
- with one, its commits are part of the store but only the index lets SQLite read them, so the
  file and its `-wal` are copied to a private folder and read there (immutable would silently
  leave the newest commits out).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from urllib.parse import quote

__all__ = ["ReadOnlyDatabase", "can_write"]


def can_write(database: Path) -> bool:
    """Whether this process may write the database and create files beside it (its journals)."""
    folder = database.parent
    return os.access(folder, os.W_OK) and (not database.exists() or os.access(database, os.W_OK))


class ReadOnlyDatabase:
    """How to connect read-only to one SQLite file; close() removes a private copy, if one was made."""

    def __init__(self, database: Path) -> None:
        self._copy: tempfile.TemporaryDirectory[str] | None = None
        wal, shm = _beside(database, "-wal"), _beside(database, "-shm")
        options = "mode=ro"
        if not os.access(database.parent, os.W_OK) and not shm.exists():
            if wal.is_file() and wal.stat().st_size > 0:
                self._copy = tempfile.TemporaryDirectory(prefix="nbtrack-read-")
                copied = Path(self._copy.name) / database.name
                shutil.copyfile(database, copied)
                shutil.copyfile(wal, _beside(copied, "-wal"))
                database = copied
            else:
                options += "&immutable=1"
        self.uri = f"file:{quote(os.fspath(database.absolute()))}?{options}"

    def connect(self) -> sqlite3.Connection:
        # check_same_thread off: the pool hands connections to whichever thread reads next.
        return sqlite3.connect(self.uri, uri=True, check_same_thread=False)

    def close(self) -> None:
        if self._copy is not None:
            self._copy.cleanup()
            self._copy = None


def _beside(database: Path, suffix: str) -> Path:
    return database.with_name(database.name + suffix)

"""The embedded store: every SQL statement nbtrack runs, over SQLAlchemy Core on SQLite or PostgreSQL
(and psycopg itself for the file stream's writes on PostgreSQL, pg_stream.py).

`Store` is the one object callers use; its methods come from one module per concept:

- engine.py: the engine, SQLite's connection setup and the transactions (`Database`), every
  public method being one transaction on its own pooled connection (a Store may be shared by
  threads);
- writes.py: runs, their lines and their alerts written (`Writes`), of the inserts in upsert.py;
  on PostgreSQL a file-stream post goes through pg_stream.py (psycopg's pipeline, two round trips);
- reads.py: projects, runs, their lines and their alerts read (`Reads`);
- queries.py: the selects reads and writes share (a run by name, evenly spaced samples);
- system_read.py: the chart of a run's system metrics (its events lines), downsampled as it is read;
- run_edits.py: a run deleted with every row of it (`RunEdits`);
- archive.py: a compacted run's history read from its parquet file; compactions.py: the claims
  and the commit of a compaction (`Compactions`);
- server_keys.py: the tracking server's API keys and shared secrets (`ServerKeys`);
- artifacts.py: artifact versions created and committed, their aliases, lineage and stored blobs
  (`ArtifactVersions`), read by artifact_reads.py (`ArtifactReads`), rows in artifact_rows.py.
- artifact_gc.py: what `nbtrack server gc` may free, and its locked, re-checking sweep
  (`ArtifactSweeps`).

Writers are the internal process's sender (local mode), `nbtrack sync` and the tracking server;
readers are the read API, the CLI and the server.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import URL

from nbtrack.errors import StoreError
from nbtrack.store.artifact_gc import ArtifactSweeps
from nbtrack.store.artifacts import ArtifactVersions
from nbtrack.store.chart_read import ChartRequest
from nbtrack.store.compactions import Compactions
from nbtrack.store.downsample import Chart
from nbtrack.store.liveness import Liveness
from nbtrack.store.read_only import can_write
from nbtrack.store.reads import Reads
from nbtrack.store.run_edits import RunEdits
from nbtrack.store.schema import AlertRow, KeyRow, LineBatch, ProjectRow, RunRow
from nbtrack.store.server_keys import ServerKeys
from nbtrack.store.system_read import SystemChart, SystemChartRequest
from nbtrack.store.writes import Writes

__all__ = [
    "DB_FILENAME",
    "AlertRow",
    "Chart",
    "ChartRequest",
    "KeyRow",
    "LineBatch",
    "ProjectRow",
    "RunRow",
    "Store",
    "StoreError",
    "SystemChart",
    "SystemChartRequest",
]

DB_FILENAME = "nbtrack.db"


class Store(Writes, Reads, RunEdits, ServerKeys, Liveness, Compactions, ArtifactVersions, ArtifactSweeps):
    """Runs, their history and output, in one SQLAlchemy database (SQLite file or PostgreSQL)."""

    @classmethod
    def at_root(cls, root: str | os.PathLike[str]) -> Store:
        """The SQLite store of an nbtrack folder: root/nbtrack.db."""
        return cls(URL.create("sqlite", database=os.fspath(Path(root) / DB_FILENAME)))

    @classmethod
    def for_reading(cls, root: str | os.PathLike[str]) -> Store:
        """The store of an nbtrack folder for a reader: opened read-only when this process cannot
        write it (a read-only disk or folder), so that reading never needs write access."""
        database = Path(root) / DB_FILENAME
        return cls(URL.create("sqlite", database=os.fspath(database)), read_only=not can_write(database))

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""A compacted run's history: the parquet file its rows were moved into, read as the rows were.

A finished run's history may be compacted (server/compaction.py): its rows are written to one
parquet file in the server's files (history_export.py's columns, with each column's kind in the
file's metadata), and in one transaction the file is recorded in history_archives and the rows
deleted. From then on the file holds lines [0, line_end) but the gaps the record lists, and the
history table holds only what was written after (a resumed run), or lines written again: a line
in the table replaces the archived line of the same number. Every read of history lines goes
through `merged_lines`, so the two forms read as one.

The store does not know where the server keeps files: the reader of a store attaches an
`ArchiveFiles` (the server its files backend; nbtrack.Api a folder, FolderArchive), carried on
each connection as an execution option. A store read without one fails on a compacted run,
naming the file, rather than answer with no rows. Loaded files are kept in memory by their key
(a key is never written twice), up to CACHE_BYTES of columns.
"""

from __future__ import annotations

import gc
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, select

from nbtrack import jsonutil
from nbtrack.errors import StoreError
from nbtrack.store.schema import history, history_archives

__all__ = [
    "ARCHIVE_OPTION",
    "KINDS_METADATA",
    "ArchiveFiles",
    "ArchiveRecord",
    "ArchivedHistory",
    "FolderArchive",
    "archive_record",
    "merged_lines",
    "present_ranges",
]

ARCHIVE_OPTION = "nbtrack_archive"  # the execution option carrying a connection's ArchiveFiles
KINDS_METADATA = b"nbtrack.kinds"  # the parquet metadata naming each column's kind (history_export.py)
CACHE_BYTES = 1 << 30

Lines = tuple[list[int], list[int], list[dict[str, Any]]]  # lines, steps, rows


class ArchiveFiles(Protocol):
    location: str  # for people: where the files are

    def read_table(self, key: str) -> Any:
        """The parquet file at key as a pyarrow Table; StoreError if it cannot be read."""
        ...


class FolderArchive:
    """Archives in a local folder (the files folder of a server run with --dir or a folder --files)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def read_table(self, key: str) -> Any:
        import pyarrow.parquet as pq

        try:
            return pq.read_table(self.root / key)
        except OSError as exc:
            raise StoreError(f"could not read the compacted history {self.root / key}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    key: str  # of the parquet file, in the server's files
    line_end: int  # the file holds lines [0, line_end) but the gaps
    rows: int
    gaps: tuple[tuple[int, int], ...]  # [start, stop) ranges below line_end holding no line
    sha256: str
    size: int


def archive_record(conn: Connection, pk: int) -> ArchiveRecord | None:
    """The run's archive, or None if its history was never compacted."""
    found = conn.execute(select(history_archives).where(history_archives.c.run_pk == pk)).first()
    if found is None:
        return None
    gaps = tuple((int(a), int(b)) for a, b in jsonutil.loads(found.gaps))
    return ArchiveRecord(found.key, found.line_end, found.rows, gaps, found.sha256, found.size)


def present_ranges(line_end: int, gaps: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The [start, stop) ranges of lines below line_end that the gaps leave."""
    ranges, at = [], 0
    for start, stop in gaps:
        if start > at:
            ranges.append((at, start))
        at = stop
    if at < line_end:
        ranges.append((at, line_end))
    return ranges


class ArchivedHistory:
    """A compacted run's parquet file, read back as its rows (lines, steps, row objects)."""

    def __init__(self, table: Any, record: ArchiveRecord) -> None:
        if table.num_rows != record.rows:
            raise StoreError(
                f"the compacted history {record.key} holds {table.num_rows} rows, its record {record.rows}"
            )
        self.table = table
        metadata = table.schema.metadata or {}
        self.kinds: dict[str, str] = jsonutil.loads(metadata.get(KINDS_METADATA, b"{}"))
        self.ranges = present_ranges(record.line_end, record.gaps)
        self.firsts = [start for start, _ in self.ranges]
        self.offsets = [0]  # the row index of each range's first line
        for start, stop in self.ranges:
            self.offsets.append(self.offsets[-1] + stop - start)

    def _index(self, line: int) -> int:
        """The index of the first row at or past line."""
        at = bisect_right(self.firsts, line) - 1
        if at < 0:
            return 0
        start, stop = self.ranges[at]
        return self.offsets[at] + min(line, stop) - start

    def lines(self, start: int, stop: int, limit: int | None = None) -> Lines:
        """The archived lines in [start, stop) (at most limit of them), in line order."""
        first, last = self._index(start), self._index(stop)
        if limit is not None:
            last = min(last, first + limit)
        if last <= first:
            return [], [], []
        rows = self._rows(first, last)
        numbers: list[int] = []
        at = bisect_right(self.offsets, first) - 1
        index = first
        while index < last:
            range_start, range_stop = self.ranges[at]
            begin = range_start + index - self.offsets[at]
            take = min(range_stop - begin, last - index)
            numbers.extend(range(begin, begin + take))
            index += take
            at += 1
        return numbers, [row["_step"] for row in rows], rows

    def _rows(self, first: int, last: int) -> list[dict[str, Any]]:
        part = self.table.slice(first, last - first)
        names = part.column_names
        columns = [part.column(name).to_pylist() for name in names]
        # Millions of new dicts would set off the cyclic collector again and again, each time
        # walking every object made so far; none of these can be in a cycle.
        collecting = gc.isenabled()
        gc.disable()
        try:
            if not any(part.column(name).null_count for name in names):
                rows = list(map(dict, map(zip, repeat(names), zip(*columns, strict=True))))
            else:  # a row without a key has null there
                rows = [
                    {name: value for name, value in zip(names, values, strict=True) if value is not None}
                    for values in zip(*columns, strict=True)
                ]
            for name in names:
                if self.kinds.get(name) == "json":  # the JSON text of each value (history_export.py)
                    for row in rows:
                        if name in row:
                            row[name] = jsonutil.loads(row[name])
        finally:
            if collecting:
                gc.enable()
        return rows


class _Cache:
    """Loaded archives by key, least recently used dropped past CACHE_BYTES."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, str], ArchivedHistory] = OrderedDict()

    def get(self, files: ArchiveFiles, record: ArchiveRecord) -> ArchivedHistory:
        name = (files.location, record.key)
        with self._lock:
            found = self._kept.get(name)
            if found is not None:
                self._kept.move_to_end(name)
                return found
        loaded = ArchivedHistory(files.read_table(record.key), record)
        with self._lock:
            self._kept[name] = loaded
            while len(self._kept) > 1 and sum(a.table.nbytes for a in self._kept.values()) > CACHE_BYTES:
                self._kept.popitem(last=False)
        return loaded


_cache = _Cache()


def load(conn: Connection, record: ArchiveRecord) -> ArchivedHistory:
    """The archive of record, read through the connection's ArchiveFiles."""
    files: ArchiveFiles | None = conn.get_execution_options().get(ARCHIVE_OPTION)
    if files is None:
        raise StoreError(
            f"this run's history was compacted into {record.key} of the tracking server's files; "
            "read it through the server (or nbtrack.Api on the server's --dir, whose files folder holds it)"
        )
    return _cache.get(files, record)


def merged_lines(
    conn: Connection, pk: int, ranges: Sequence[tuple[int, int]], limit: int | None = None
) -> Lines:
    """The run's lines in the [start, stop) ranges (ascending, disjoint), from its archive and its
    history table (a table line replacing the archived one), in line order; at most limit."""
    record = archive_record(conn, pk)
    table = _table_lines(conn, pk, ranges, limit)
    if record is None:
        return table
    archived = load(conn, record)
    lines: list[int] = []
    steps: list[int] = []
    rows: list[dict[str, Any]] = []
    for start, stop in ranges:
        part = archived.lines(start, min(stop, record.line_end), limit)
        lines += part[0]
        steps += part[1]
        rows += part[2]
        if limit is not None and len(lines) >= limit:
            break
    if table[0] and (not lines or table[0][0] > lines[-1]):  # lines written after the archived ones
        lines, steps, rows = lines + table[0], steps + table[1], rows + table[2]
    elif table[0]:  # some replace archived lines
        replaced = dict(zip(table[0], zip(table[1], table[2], strict=True), strict=True))
        joined = sorted({**dict(zip(lines, zip(steps, rows, strict=True), strict=True)), **replaced}.items())
        lines = [line for line, _ in joined]
        steps = [step for _, (step, _) in joined]
        rows = [row for _, (_, row) in joined]
    if limit is not None:
        lines, steps, rows = lines[:limit], steps[:limit], rows[:limit]
    return lines, steps, rows


_RANGES_PER_QUERY = 100  # line ranges OR'ed in one statement


def _table_lines(conn: Connection, pk: int, ranges: Sequence[tuple[int, int]], limit: int | None) -> Lines:
    from sqlalchemy import and_, or_

    lines: list[int] = []
    steps: list[int] = []
    rows: list[dict[str, Any]] = []
    for i in range(0, len(ranges), _RANGES_PER_QUERY):
        part = ranges[i : i + _RANGES_PER_QUERY]
        stmt = (
            select(history.c.line, history.c.step, history.c.data)
            .where(
                history.c.run_pk == pk,
                or_(*(and_(history.c.line >= start, history.c.line < stop) for start, stop in part)),
            )
            .order_by(history.c.line)
            .limit(None if limit is None else limit - len(lines))
        )
        for line, step, data in conn.execute(stmt):
            lines.append(line)
            steps.append(step)
            rows.append(jsonutil.loads(data))
        if limit is not None and len(lines) >= limit:
            break
    return lines, steps, rows

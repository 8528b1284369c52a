"""A run's history as a parquet file: what wandb's `run.scan_history()` reads (parquetHistory).

wandb's public API reads a run's history through wandb-core, which parses parquetHistory's
`liveData` as strict JSON (a NaN or an infinity there fails the whole scan) and reads the
files at `parquetUrls` as parquet, where a double column carries NaN and ±inf exactly. So the
server answers parquetHistory with signed URLs (no key needed, as for cloud storage) of parquet
files holding every row, and no liveData.

wandb-core caches each file by its place in `parquetUrls` (entity_project_run_INDEX), not by its
URL, and never looks at it again. So a run's history is served as segments: consecutive line
ranges [start, end), each claimed once (the object <start>.claim, created only if absent, holds
its end: concurrent requests, even of several servers sharing the files, agree on one chain) and
never changed. A run that logged more since the last answer gets a new segment after the last
one, so every place in the list always means the same rows. A segment's file is written on first
download (pyarrow, imported then: only servers that serve wandb's history scans need it) under
~history/<entity>/<project>/<run>/<start>-<end>.parquet of the files backend (file_backend.py:
the run files' folder or bucket, so replicas sharing a bucket share the exports too). Each
answer that finds new rows adds a segment: a live run scanned every minute gets a segment a
minute, small ones. Lines filled in after their segment was written (a damaged log synced later)
are not in it. No entity can be named "~history".

Columns: one per key, in the order keys first appear. A key whose values are all booleans is a
bool column, all integers (within int64) an int64 column, numbers (ints exactly representable as
doubles, floats, NaN, ±inf) a double column, all text a string column. Nested values (lists,
objects: media, tables) get the column pyarrow makes of them (lists, structs) when reading it back
gives every value exactly as logged; a key whose values do not (mixed kinds, objects with
different keys) is a string column of each value's JSON text. A row without the key is null
(wandb's scan gives None there). The file's metadata names each column's kind (nbtrack.kinds),
so nbtrack reads a compacted run's file (compaction.py, store/archive.py) back as the rows were.

Memory stays bounded whatever the run holds: a segment is read in pages (at most PAGE_ROWS rows
and about PAGE_BYTES of JSON text each), twice: once to settle each column's type, once to write
each page as a parquet row group. Both reads stop at the segment's end, so they see the same rows
while the run logs on. At most WRITERS segments are written at once.

Several requests (or several servers sharing the files) may write the same segment at once: each
writes a local temporary file of its own and puts it in whole (a rename, or an S3 upload that
becomes visible when complete), so a reader only ever sees a whole
file. A write that fails part way (a full disk) leaves nothing behind and answers INTERNAL,
naming the cause.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from nbtrack import jsonutil
from nbtrack.run_manage import EXPORTS_FOLDER
from nbtrack.server.errors import ApiError
from nbtrack.server.file_backend import FileBackend
from nbtrack.server.folder_backend import FolderBackend
from nbtrack.store import Store
from nbtrack.store.archive import KINDS_METADATA

__all__ = ["PAGE_BYTES", "PAGE_ROWS", "WRITERS", "HistoryExports", "column_kind"]

log = logging.getLogger("nbtrack.server")

PAGE_ROWS = 10_000
PAGE_BYTES = 4 << 20
WRITERS = 2
_STALE_PART = 3600.0  # a temporary file this old (seconds) is a crashed writer's: removed

_SEGMENT = re.compile(r"([0-9]{1,15})-([0-9]{1,15})")
_INT64 = range(-(2**63), 2**63)
_EXACT_DOUBLE = 2**53

Pages = Callable[[], Iterator[list[dict[str, Any]]]]


class _Tally:
    """What a key's values are, seen page by page: their kinds, and for lists and objects the
    type pyarrow gives them (None once some page's values do not read back exactly)."""

    __slots__ = ("kinds", "large_int", "nested", "nested_ok")

    def __init__(self) -> None:
        self.kinds: set[str] = set()
        self.large_int = False
        self.nested: Any = None
        self.nested_ok = True

    def add(self, value: Any) -> bool:
        """Count value in; True if it is a list or an object."""
        if value is None:
            return False
        if isinstance(value, bool):
            self.kinds.add("bool")
        elif isinstance(value, int):
            if value not in _INT64:
                self.kinds.add("wide")
            else:
                self.large_int = self.large_int or abs(value) > _EXACT_DOUBLE
                self.kinds.add("int64")
        elif isinstance(value, float):
            self.kinds.add("double")
        elif isinstance(value, str):
            self.kinds.add("string")
        else:
            self.kinds.add("nested")
            return True
        return False

    def kind(self, strict: bool = False) -> str:
        """bool, int64, double, string, nested (pyarrow's own column) or json (JSON texts);
        strict: ints and floats in one key are JSON texts, not a double column."""
        kinds = self.kinds
        if not kinds or "wide" in kinds:
            return "json"
        if "nested" in kinds:
            return "nested" if kinds == {"nested"} and self.nested_ok and self.nested is not None else "json"
        if len(kinds) == 1:
            return next(iter(kinds))
        if kinds == {"int64", "double"} and not self.large_int and not strict:
            return "double"
        return "json"


def column_kind(values: Iterable[Any]) -> str:
    """The parquet type a key's values (None for rows without it) take: bool, int64, double,
    string, or json (a string column of JSON texts, or of pyarrow's own nested type)."""
    tally = _Tally()
    for value in values:
        tally.add(value)
    kind = tally.kind()
    return "json" if kind == "nested" else kind


class _Retype(Exception):
    """A key's nested values do not read back exactly under the type settled for them."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class HistoryExports:
    """Parquet exports of runs' histories, cached under ~history/ of the files backend."""

    def __init__(
        self,
        store: Store,
        files: FileBackend | Path,
        *,
        page_rows: int = PAGE_ROWS,
        page_bytes: int = PAGE_BYTES,
    ) -> None:
        self.store = store
        self.backend = FolderBackend(files) if isinstance(files, Path) else files
        self.page_rows = page_rows
        self.page_bytes = page_bytes
        # One export of a run at a time in this process (the others wait for it and serve it);
        # runs share 64 locks by hash, so the table cannot grow with the runs exported.
        self._locks = [threading.Lock() for _ in range(64)]
        self._writers = threading.BoundedSemaphore(WRITERS)

    def segments(self, entity: str, project: str, run_id: str, lines: int) -> list[tuple[int, int]]:
        """The run's history lines below `lines` as the chain of segments [start, end): the ones
        claimed before, and one claimed now for the lines past them, if any."""
        folder = self._folder(entity, project, run_id)
        while True:
            chain = self._chain(folder)
            end = chain[-1][1] if chain else 0
            if lines <= end:
                return chain
            if self.backend.create(f"{folder}/{end}.claim", str(lines).encode()) and not chain:
                self._remove_strays(folder)  # exports of an older server (one file per version)

    def parquet(self, entity: str, project: str, run_id: str, segment: str) -> str:
        """The key of a segment's file in the backend (written now if it is not yet); NOT_FOUND if
        the segment is not claimed."""
        found = _SEGMENT.fullmatch(segment)
        if found is None:
            raise ApiError("BAD_REQUEST", f"{segment!r:.40} is not a history segment")
        start, end = int(found[1]), int(found[2])
        folder = self._folder(entity, project, run_id)
        key = f"{folder}/{start}-{end}.parquet"
        if self.backend.stat(key) is not None:
            return key
        if self._claimed_end(folder, start) != end:
            raise ApiError("NOT_FOUND", f"run {entity}/{project}/{run_id} has no history segment {segment}")
        with self._locks[zlib.crc32(folder.encode()) % len(self._locks)]:
            if self.backend.stat(key) is not None:
                return key
            with self._writers:
                self._write(entity, project, run_id, (start, end), key)
            self._remove_stale_parts(folder)
        return key

    def _folder(self, entity: str, project: str, run_id: str) -> str:
        return f"{EXPORTS_FOLDER}/{entity}/{project}/{run_id}"

    def _write(self, entity: str, project: str, run_id: str, lines: tuple[int, int], key: str) -> None:
        temp = self.backend.temp_path()
        try:
            write_history(lambda: self._pages(entity, project, run_id, lines), str(temp))
            self.backend.put_file(key, temp)
        except OSError as exc:
            log.error("history export of %s/%s/%s failed: %s", entity, project, run_id, exc)
            raise ApiError(
                "INTERNAL",
                f"could not write the history export of run {entity}/{project}/{run_id}: "
                f"{exc.strerror or exc}",
            ) from exc
        finally:
            temp.unlink(missing_ok=True)

    def _pages(
        self, entity: str, project: str, run_id: str, lines: tuple[int, int]
    ) -> Iterator[list[dict[str, Any]]]:
        after, below = lines[0] - 1, lines[1]
        while True:
            page = self.store.history_page(
                entity, project, run_id, after, below, self.page_rows, self.page_bytes
            )
            if not page:
                return
            after = page[-1][0]
            yield [jsonutil.loads(data) for _, data in page]

    def forget(self, entity: str, project: str, run_id: str) -> None:
        """Remove the run's exports (its run was deleted)."""
        self.backend.delete_prefix(self._folder(entity, project, run_id))

    def _claimed_end(self, folder: str, start: int) -> int | None:
        data = self.backend.read_small(f"{folder}/{start}.claim")
        try:
            return None if data is None else int(data)
        except ValueError:
            return None

    def _chain(self, folder: str) -> list[tuple[int, int]]:
        """The claimed segments from line 0 on, in order."""
        chain: list[tuple[int, int]] = []
        start = 0
        while (end := self._claimed_end(folder, start)) is not None and end > start:
            chain.append((start, end))
            start = end
        return chain

    def _remove_strays(self, folder: str) -> None:
        """Parquet files no claimed segment names (an older server's exports)."""
        keep = {f"{start}-{end}.parquet" for start, end in self._chain(folder)}
        for found in self.backend.list(folder):
            # Only the folder's own files: compacted/ beneath it holds a run's archive (compaction.py).
            if found.key.endswith(".parquet") and "/" not in found.key and found.key not in keep:
                self.backend.delete(f"{folder}/{found.key}")

    def _remove_stale_parts(self, folder: str) -> None:
        """Temporary files an older server's crashed writer left beside the exports."""
        for found in self.backend.list(folder):
            stale = time.time() - found.updated_at > _STALE_PART
            if found.key.startswith(".") and found.key.endswith(".part") and stale:
                self.backend.delete(f"{folder}/{found.key}")


def write_parquet(rows: Sequence[dict[str, Any]], where: str, page_rows: int = PAGE_ROWS) -> None:
    """rows as a parquet file at where (the columns of the module's docstring)."""

    def pages() -> Iterator[list[dict[str, Any]]]:
        for start in range(0, len(rows), page_rows):
            yield list(rows[start : start + page_rows])

    write_history(pages, where)


def write_history(pages: Pages, where: str, *, strict: bool = False) -> None:
    """The rows of pages() as a parquet file at where, a row group a page; pages() is read twice
    (or more, if a nested column has to fall back to JSON texts), giving the same rows each time.

    strict (a compacted run's archive, read back by nbtrack rather than wandb): an int reads back
    an int and a float a float, so a key mixing them, or a nested value pyarrow would turn ints
    into floats in, is a column of JSON texts."""
    import pyarrow as pa  # only servers that serve history scans need it

    tallies: dict[str, _Tally] = {}
    for page in pages():
        nested: set[str] = set()
        for row in page:
            for key, value in row.items():
                tally = tallies.get(key)
                if tally is None:
                    tally = tallies[key] = _Tally()
                if tally.add(value):
                    nested.add(key)
        for key in nested:
            _infer_nested(pa, tallies[key], [row.get(key) for row in page], strict)
    while True:
        try:
            _write_pages(pa, pages, tallies, where, strict)
            return
        except _Retype as retype:
            tallies[retype.key].nested_ok = False


def _infer_nested(pa: Any, tally: _Tally, values: list[Any], strict: bool) -> None:
    """Fold one page's values of a nested key into the type its column will have."""
    if not tally.nested_ok:
        return
    page_type = _exact_type(pa, values, strict)
    if page_type is None:
        tally.nested_ok = False
    elif tally.nested is None or tally.nested == page_type:
        tally.nested = page_type
    else:
        try:
            schemas = [pa.schema([pa.field("v", t)]) for t in (tally.nested, page_type)]
            tally.nested = pa.unify_schemas(schemas, promote_options="permissive").field("v").type
        except (pa.ArrowException, ValueError, TypeError):
            tally.nested_ok = False


def _exact_type(pa: Any, values: list[Any], strict: bool) -> Any:
    """pyarrow's type for values if reading them back gives every value exactly, else None."""
    try:
        column = pa.array(values)
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        return None
    if all(_same(a, b, strict) for a, b in zip(column.to_pylist(), values, strict=True)):
        return column.type
    return None


def _write_pages(pa: Any, pages: Pages, tallies: dict[str, _Tally], where: str, strict: bool) -> None:
    import pyarrow.parquet as pq

    scalar = {"bool": pa.bool_(), "int64": pa.int64(), "double": pa.float64(), "string": pa.string()}
    kinds = {key: tally.kind(strict) for key, tally in tallies.items()}
    types = {
        key: tallies[key].nested if kind == "nested" else pa.string() if kind == "json" else scalar[kind]
        for key, kind in kinds.items()
    }
    if not types:
        types = {"_step": pa.int64()}
    # Each column's kind in the file's metadata: a compacted run's reader (store/archive.py) parses
    # the JSON texts back; wandb's reader ignores it.
    metadata = {KINDS_METADATA: jsonutil.dumps(kinds)}
    schema = pa.schema([pa.field(key, type) for key, type in types.items()], metadata=metadata)
    with pq.ParquetWriter(where, schema) as writer:
        if not kinds:
            writer.write_table(schema.empty_table())
            return
        for page in pages():
            columns = [_column(pa, key, kinds[key], types[key], page, strict) for key in types]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def _column(pa: Any, key: str, kind: str, type: Any, page: list[dict[str, Any]], strict: bool) -> Any:
    if kind == "json":
        texts = [_json_text(row[key]) if key in row else None for row in page]
        return pa.array(texts, type=pa.string())
    values = [row.get(key) for row in page]
    if kind == "double":
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    if kind != "nested":
        return pa.array(values, type=type)
    try:
        column = pa.array(values, type=type)
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        raise _Retype(key) from None
    if not all(_same(a, b, strict) for a, b in zip(column.to_pylist(), values, strict=True)):
        raise _Retype(key)
    return column


def _json_text(value: Any) -> str:
    try:
        return jsonutil.dumps_str(value)
    except TypeError:  # an integer beyond 64 bits, which orjson cannot write: Python's json can
        return json.dumps(value, separators=(",", ":"))


def _same(a: Any, b: Any, strict: bool = False) -> bool:
    """Equal as JSON values: NaN equals NaN, 1 equals 1.0 (unless strict), but a bool is no number
    and no key is extra."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return (a == b or (a != a and b != b)) and (not strict or type(a) is type(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], strict) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, strict) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b

"""A run's history as a parquet file: what wandb's `run.scan_history()` reads (parquetHistory).

wandb's public API reads a run's history through wandb-core, which parses parquetHistory's
`liveData` as strict JSON (a NaN or an infinity there fails the whole scan) and reads the
files at `parquetUrls` as parquet, where a double column carries NaN and ±inf exactly. So the
server answers parquetHistory with one signed URL (no key needed, as for cloud storage) of an
export of every row, and no liveData.

An export is written on first request (pyarrow, imported then: only servers that serve wandb's
history scans need it) under <files>/~history/<entity>/<project>/<run>/<version>.parquet and
served from there until the run changes: the version in the URL is the run's history line count
and its last update (ms), so a run that logs more gets a new URL, and an old export of the run
is removed when a newer one is written. No entity can be named "~history".

Columns: one per key, in the order keys first appear. A key whose values are all booleans is a
bool column, all integers (within int64) an int64 column, numbers (ints exactly representable as
doubles, floats, NaN, ±inf) a double column, all text a string column. Nested values (lists,
objects: media, tables) get the column pyarrow makes of them (lists, structs) when reading it back
gives every value exactly as logged; a key whose values do not (mixed kinds, objects with
different keys) is a string column of each value's JSON text. A row without the key is null
(wandb's scan gives None there).

Memory stays bounded whatever the run holds: the history is read in pages (at most PAGE_ROWS rows
and about PAGE_BYTES of JSON text each), twice: once to settle each column's type, once to write
each page as a parquet row group. Both reads stop below the line count the version names, so they
see the same rows while the run logs on. At most WRITERS exports are written at once.

Several requests (or several servers sharing the files) may export the same run at once: each
writes a temporary file of its own and renames it into place, so a reader only ever sees a whole
export. An export that fails part way (a full disk) leaves nothing behind and answers INTERNAL,
naming the cause. The endpoint serves an export it has opened, so removing an older version
(when a newer one is written) never cuts off a download under way.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from nbtrack import jsonutil
from nbtrack.server.errors import ApiError
from nbtrack.store import Store

__all__ = ["PAGE_BYTES", "PAGE_ROWS", "WRITERS", "HistoryExports", "column_kind", "export_version"]

log = logging.getLogger("nbtrack.server")

PAGE_ROWS = 10_000
PAGE_BYTES = 4 << 20
WRITERS = 2
_STALE_PART = 3600.0  # a temporary file this old (seconds) is a crashed writer's: removed

_VERSION = re.compile(r"([0-9]{1,12})-([0-9]{1,16})")
_INT64 = range(-(2**63), 2**63)
_EXACT_DOUBLE = 2**53

Pages = Callable[[], Iterator[list[dict[str, Any]]]]


def export_version(run: Any) -> str:
    """The name of the run's history as it is now: its line count and last update (ms)."""
    return f"{run.history_line_count}-{round(run.updated_at * 1000)}"


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

    def kind(self) -> str:
        """bool, int64, double, string, nested (pyarrow's own column) or json (JSON texts)."""
        kinds = self.kinds
        if not kinds or "wide" in kinds:
            return "json"
        if "nested" in kinds:
            return "nested" if kinds == {"nested"} and self.nested_ok and self.nested is not None else "json"
        if len(kinds) == 1:
            return next(iter(kinds))
        if kinds == {"int64", "double"} and not self.large_int:
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
    """Parquet exports of runs' histories, cached under <files>/~history."""

    def __init__(
        self, store: Store, files_dir: Path, *, page_rows: int = PAGE_ROWS, page_bytes: int = PAGE_BYTES
    ) -> None:
        self.store = store
        self.root = files_dir / "~history"
        self.page_rows = page_rows
        self.page_bytes = page_bytes
        # One export of a run at a time in this process (the others wait for it and serve it);
        # runs share 64 locks by hash, so the table cannot grow with the runs exported.
        self._locks = [threading.Lock() for _ in range(64)]
        self._writers = threading.BoundedSemaphore(WRITERS)

    def open(self, entity: str, project: str, run_id: str, version: str) -> BinaryIO:
        """The run's export, opened (written now if it is not yet); NOT_FOUND if no such run."""
        for _ in range(3):
            path = self.parquet(entity, project, run_id, version)
            try:
                return open(path, "rb")
            except FileNotFoundError:  # removed by a newer export between the two: write it again
                continue
        raise ApiError("INTERNAL", f"the history export of run {entity}/{project}/{run_id} keeps vanishing")

    def parquet(self, entity: str, project: str, run_id: str, version: str) -> Path:
        """The path of the run's export (written now if it is not yet); NOT_FOUND if no such run."""
        found = _VERSION.fullmatch(version)
        if found is None:
            raise ApiError("BAD_REQUEST", f"{version!r:.40} is not a history export's version")
        folder = self.root / entity / project / run_id
        path = folder / f"{version}.parquet"
        if path.is_file():
            return path
        with self._locks[zlib.crc32(str(folder).encode()) % len(self._locks)]:
            if path.is_file():
                return path
            if self.store.get_run(entity, project, run_id) is None:
                raise ApiError("NOT_FOUND", f"run {entity}/{project}/{run_id} does not exist")
            folder.mkdir(parents=True, exist_ok=True)
            with self._writers:
                self._write(entity, project, run_id, int(found[1]), folder, path)
            self._prune(folder, version)
        return path

    def _write(self, entity: str, project: str, run_id: str, lines: int, folder: Path, path: Path) -> None:
        fd, temp_name = tempfile.mkstemp(dir=folder, prefix=".", suffix=".part")
        os.close(fd)
        try:
            write_history(lambda: self._pages(entity, project, run_id, lines), temp_name)
            os.replace(temp_name, path)
        except OSError as exc:
            log.error("history export of %s/%s/%s failed: %s", entity, project, run_id, exc)
            raise ApiError(
                "INTERNAL",
                f"could not write the history export of run {entity}/{project}/{run_id}: "
                f"{exc.strerror or exc}",
            ) from exc
        finally:
            if os.path.exists(temp_name):
                os.unlink(temp_name)

    def _pages(self, entity: str, project: str, run_id: str, below: int) -> Iterator[list[dict[str, Any]]]:
        after = -1
        while True:
            page = self.store.history_page(
                entity, project, run_id, after, below, self.page_rows, self.page_bytes
            )
            if not page:
                return
            after = page[-1][0]
            yield [jsonutil.loads(data) for _, data in page]

    @staticmethod
    def _prune(folder: Path, version: str) -> None:
        """Remove exports older than version (never a newer one another writer just renamed in)
        and temporary files a crashed writer left."""
        mine = _version_key(version)
        for old in folder.glob("*.parquet"):
            found = _VERSION.fullmatch(old.stem)
            if found is not None and _version_key(old.stem) < mine:
                old.unlink(missing_ok=True)
        for part in folder.glob(".*.part"):
            try:
                if time.time() - part.stat().st_mtime > _STALE_PART:
                    part.unlink(missing_ok=True)
            except FileNotFoundError:
                pass

    def forget(self, entity: str, project: str, run_id: str) -> None:
        shutil.rmtree(self.root / entity / project / run_id, ignore_errors=True)


def _version_key(version: str) -> tuple[int, int]:
    lines, updated = version.split("-")
    return int(lines), int(updated)


def write_parquet(rows: Sequence[dict[str, Any]], where: str, page_rows: int = PAGE_ROWS) -> None:
    """rows as a parquet file at where (the columns of the module's docstring)."""

    def pages() -> Iterator[list[dict[str, Any]]]:
        for start in range(0, len(rows), page_rows):
            yield list(rows[start : start + page_rows])

    write_history(pages, where)


def write_history(pages: Pages, where: str) -> None:
    """The rows of pages() as a parquet file at where, a row group a page; pages() is read twice
    (or more, if a nested column has to fall back to JSON texts), giving the same rows each time."""
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
            _infer_nested(pa, tallies[key], [row.get(key) for row in page])
    while True:
        try:
            _write_pages(pa, pages, tallies, where)
            return
        except _Retype as retype:
            tallies[retype.key].nested_ok = False


def _infer_nested(pa: Any, tally: _Tally, values: list[Any]) -> None:
    """Fold one page's values of a nested key into the type its column will have."""
    if not tally.nested_ok:
        return
    page_type = _exact_type(pa, values)
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


def _exact_type(pa: Any, values: list[Any]) -> Any:
    """pyarrow's type for values if reading them back gives every value exactly, else None."""
    try:
        column = pa.array(values)
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        return None
    if all(_same(a, b) for a, b in zip(column.to_pylist(), values, strict=True)):
        return column.type
    return None


def _write_pages(pa: Any, pages: Pages, tallies: dict[str, _Tally], where: str) -> None:
    import pyarrow.parquet as pq

    scalar = {"bool": pa.bool_(), "int64": pa.int64(), "double": pa.float64(), "string": pa.string()}
    kinds = {key: tally.kind() for key, tally in tallies.items()}
    types = {
        key: tallies[key].nested if kind == "nested" else pa.string() if kind == "json" else scalar[kind]
        for key, kind in kinds.items()
    }
    if not types:
        types = {"_step": pa.int64()}
    schema = pa.schema([pa.field(key, type) for key, type in types.items()])
    with pq.ParquetWriter(where, schema) as writer:
        if not kinds:
            writer.write_table(schema.empty_table())
            return
        for page in pages():
            columns = [_column(pa, key, kinds[key], types[key], page) for key in types]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def _column(pa: Any, key: str, kind: str, type: Any, page: list[dict[str, Any]]) -> Any:
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
    if not all(_same(a, b) for a, b in zip(column.to_pylist(), values, strict=True)):
        raise _Retype(key)
    return column


def _json_text(value: Any) -> str:
    try:
        return jsonutil.dumps_str(value)
    except TypeError:  # an integer beyond 64 bits, which orjson cannot write: Python's json can
        return json.dumps(value, separators=(",", ":"))


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values: NaN equals NaN, 1 equals 1.0, but a bool is no number and no key is extra."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b or (a != a and b != b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b

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
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from nbtrack import jsonutil
from nbtrack.server.errors import ApiError
from nbtrack.store import RunRow, Store

__all__ = ["HistoryExports", "column_kind", "export_version"]

_VERSION = re.compile(r"[0-9]{1,12}-[0-9]{1,16}")
_INT64 = range(-(2**63), 2**63)
_EXACT_DOUBLE = 2**53


def export_version(run: RunRow) -> str:
    """The name of the run's history as it is now: its line count and last update (ms)."""
    return f"{run.history_line_count}-{round(run.updated_at * 1000)}"


def column_kind(values: Iterable[Any]) -> str:
    """The parquet type a key's values (None for rows without it) take: bool, int64, double,
    string, or json (a string column of JSON texts)."""
    kinds = set()
    large_int = False
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            kinds.add("bool")
        elif isinstance(value, int):
            if value not in _INT64:
                return "json"
            large_int = large_int or abs(value) > _EXACT_DOUBLE
            kinds.add("int64")
        elif isinstance(value, float):
            kinds.add("double")
        elif isinstance(value, str):
            kinds.add("string")
        else:
            return "json"
    if not kinds:
        return "json"
    if len(kinds) == 1:
        return kinds.pop()
    if kinds == {"int64", "double"} and not large_int:
        return "double"
    return "json"


class HistoryExports:
    """Parquet exports of runs' histories, cached under <files>/~history."""

    def __init__(self, store: Store, files_dir: Path) -> None:
        self.store = store
        self.root = files_dir / "~history"
        self._lock = threading.Lock()  # one writer at a time: an export is written once

    def parquet(self, entity: str, project: str, run_id: str, version: str) -> Path:
        """The path of the run's export (written now if it is not yet); NOT_FOUND if no such run."""
        if not _VERSION.fullmatch(version):
            raise ApiError("BAD_REQUEST", f"{version!r:.40} is not a history export's version")
        folder = self.root / entity / project / run_id
        path = folder / f"{version}.parquet"
        if path.is_file():
            return path
        with self._lock:
            if path.is_file():
                return path
            if self.store.get_run(entity, project, run_id) is None:
                raise ApiError("NOT_FOUND", f"run {entity}/{project}/{run_id} does not exist")
            rows = self.store.read_history(entity, project, run_id)
            folder.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(dir=folder, suffix=".part")
            os.close(fd)
            try:
                write_parquet(rows, temp_name)
                os.replace(temp_name, path)
            finally:
                if os.path.exists(temp_name):
                    os.unlink(temp_name)
            for old in folder.glob("*.parquet"):
                if old != path:
                    old.unlink(missing_ok=True)
        return path

    def forget(self, entity: str, project: str, run_id: str) -> None:
        shutil.rmtree(self.root / entity / project / run_id, ignore_errors=True)


def write_parquet(rows: Sequence[dict[str, Any]], where: str) -> None:
    """rows as a parquet file at where (the columns of the module's docstring)."""
    import pyarrow as pa  # only servers that serve history scans need it
    import pyarrow.parquet as pq

    keys = list(dict.fromkeys(key for row in rows for key in row))
    types = {"bool": pa.bool_(), "int64": pa.int64(), "double": pa.float64(), "string": pa.string()}
    columns = []
    for key in keys:
        values = [row.get(key) for row in rows]
        kind = column_kind(values)
        if kind == "json":
            columns.append(_nested_column(pa, key, rows, values))
        elif kind == "double":
            columns.append(pa.array([None if v is None else float(v) for v in values], type=pa.float64()))
        else:
            columns.append(pa.array(values, type=types[kind]))
    if not keys:
        keys, columns = ["_step"], [pa.array([], type=pa.int64())]
    pq.write_table(pa.Table.from_arrays(columns, names=keys), where)


def _nested_column(pa: Any, key: str, rows: Sequence[dict[str, Any]], values: list[Any]) -> Any:
    """pyarrow's own column of the values if it reads back exactly, else their JSON texts."""
    try:
        column = pa.array(values)
        if all(_same(a, b) for a, b in zip(column.to_pylist(), values, strict=True)):
            return column
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        pass
    texts = [None if key not in row else jsonutil.dumps_str(row[key]) for row in rows]
    return pa.array(texts, type=pa.string())


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

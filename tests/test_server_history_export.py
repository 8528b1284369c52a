"""The parquet export behind wandb's run.scan_history() (nbtrack/server/history_export.py): written
page by page in bounded memory, exactly, safely when several writers race, and never half.

The real wandb client reading a multi-page export is in test_wandb_read.py."""

from __future__ import annotations

import errno
import io
import itertools
import json
import math
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq
import pytest

from nbtrack import jsonutil
from nbtrack.server.errors import ApiError
from nbtrack.server.file_backend import FileBackend, open_file_backend
from nbtrack.server.history_export import HistoryExports, write_parquet
from nbtrack.store import Store
from tests import serving
from tests.serving import POSTGRES_URL, Client, ServerProcess

server = serving.server
pg_server = serving.pg_server

PARQUET = """query RunParquetHistory($entity: String!, $project: String!, $runName: String!,
    $liveKeys: [String!]!) { project(name: $project, entityName: $entity) { run(name: $runName) {
        parquetHistory(liveKeys: $liveKeys) { parquetUrls liveData } } } }"""


def same(a: Any, b: Any) -> bool:
    return bool(jsonutil.dumps(a) == jsonutil.dumps(b))


def read_back(where: Path | io.BytesIO) -> list[dict[str, Any]]:
    """The export's rows, a row's absent keys (null cells) left out."""
    return [{k: v for k, v in row.items() if v is not None} for row in pq.read_table(where).to_pylist()]


MIXES: dict[str, list[dict[str, Any]]] = {
    "scalars": [
        {"_step": 0, "x": math.nan, "big": 2**62, "b": True, "s": "a"},
        {"_step": 1, "x": math.inf, "big": -(2**62), "b": False},
        {"_step": 2, "x": -math.inf, "big": 1, "s": "c"},
        {"_step": 3, "x": 2.5, "late": 1},
    ],
    # ints on one page, doubles on another: one double column, as on one page
    "ints_then_doubles": [{"_step": i, "v": i} for i in range(3)] + [{"_step": 3, "v": 0.5}],
    # numbers on one page, text on the next: JSON texts for the whole column
    "kinds_across_pages": [{"_step": 0, "v": 1}, {"_step": 1, "v": 2}, {"_step": 2, "v": "t"}],
    # lists of ints then of doubles: pyarrow's list<double> reads back exactly
    "lists_across_pages": [{"_step": 0, "m": [1, 2]}, {"_step": 1, "m": [3]}, {"_step": 2, "m": [0.5]}],
    # objects whose keys differ between pages: JSON texts (a struct would add None keys)
    "objects_across_pages": [
        {"_step": 0, "m": {"a": 1}},
        {"_step": 1, "m": {"a": 2}},
        {"_step": 2, "m": {"b": 2}},
    ],
    "media": [
        {"_step": 0, "img": {"_type": "image-file", "path": "media/images/img_0.png", "width": 2}},
        {"_step": 1},
        {"_step": 2, "img": {"_type": "image-file", "path": "media/images/img_2.png", "width": 4}},
    ],
    "wide_int": [{"_step": 0, "w": 2**64}, {"_step": 1, "w": 1}, {"_step": 2}],
}


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_pages_give_the_columns_one_page_gives(mix: str, tmp_path: Path) -> None:
    rows = MIXES[mix]
    whole, paged = tmp_path / "whole.parquet", tmp_path / "paged.parquet"
    write_parquet(rows, str(whole), page_rows=len(rows))
    write_parquet(rows, str(paged), page_rows=2)
    assert pq.read_table(whole).schema == pq.read_table(paged).schema
    assert pq.ParquetFile(paged).metadata.num_row_groups == (len(rows) + 1) // 2
    assert same(read_back(whole), read_back(paged))


def test_values_across_pages_are_exact(tmp_path: Path) -> None:
    where = tmp_path / "t.parquet"
    write_parquet(MIXES["kinds_across_pages"], str(where), page_rows=2)
    assert [row["v"] for row in read_back(where)] == ["1", "2", '"t"']
    write_parquet(MIXES["objects_across_pages"], str(where), page_rows=2)
    assert [row["m"] for row in read_back(where)] == ['{"a":1}', '{"a":2}', '{"b":2}']
    write_parquet(MIXES["lists_across_pages"], str(where), page_rows=2)
    assert [row["m"] for row in read_back(where)] == [[1, 2], [3], [0.5]]
    write_parquet(MIXES["media"], str(where), page_rows=1)
    assert read_back(where)[2]["img"] == MIXES["media"][2]["img"]
    write_parquet(MIXES["scalars"], str(where), page_rows=1)
    assert same(read_back(where), MIXES["scalars"])


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, str]]:
    if request.param == "sqlite":
        opened = Store.at_root(tmp_path / "root")
    else:
        if not POSTGRES_URL:
            pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run on PostgreSQL")
        opened = Store(POSTGRES_URL)
    yield opened, serving.unique_name("hx")
    opened.close()


def _fill(store: Store, entity: str, count: int) -> list[dict[str, Any]]:
    rows = [{"_step": s, "loss": 1 / (s + 1), "x": math.nan if s % 7 == 0 else s + 0.5} for s in range(count)]
    store.upsert_run(entity, "p", "r")
    store.write_history(entity, "p", "r", 0, [jsonutil.dumps_str(row) for row in rows])
    return rows


@pytest.fixture(params=serving.FILE_BACKENDS)
def files(request: pytest.FixtureRequest, tmp_path: Path) -> FileBackend:
    """Where the exports go: a folder, or a new prefix of the test bucket (several HistoryExports
    on one backend are replicas sharing it)."""
    return open_file_backend(serving.files_on(request.param) or tmp_path / "files")


def _export(exports: HistoryExports, entity: str, segment: str) -> io.BytesIO:
    """The segment's file (written now if it is not yet), read out of its backend."""
    key = exports.parquet(entity, "p", "r", segment)
    opened = exports.backend.open(key)
    assert opened is not None
    return io.BytesIO(b"".join(opened.chunks))


def _segment(exports: HistoryExports, store: Store, entity: str) -> str:
    """The run's last segment, as parquetHistory claims it for the lines stored now."""
    run = store.get_run(entity, "p", "r")
    assert run is not None
    start, end = exports.segments(entity, "p", "r", run.history_line_count)[-1]
    return f"{start}-{end}"


def test_store_pages_are_bounded_by_rows_and_bytes(store: tuple[Store, str]) -> None:
    opened, entity = store
    _fill(opened, entity, 50)
    page = opened.history_page(entity, "p", "r", -1, 50, 20, 1 << 20)
    assert [line for line, _ in page] == list(range(20))
    page = opened.history_page(entity, "p", "r", 19, 50, 20, 1)  # one row reaches the bytes
    assert [line for line, _ in page] == [20]
    assert [line for line, _ in opened.history_page(entity, "p", "r", 40, 45, 20, 1 << 20)] == [
        41,
        42,
        43,
        44,
    ]


def test_export_in_pages_is_exact_and_stops_at_its_segment(store: tuple[Store, str], tmp_path: Path) -> None:
    opened, entity = store
    rows = _fill(opened, entity, 95)
    exports = HistoryExports(opened, tmp_path, page_rows=10, page_bytes=1 << 20)
    segment = _segment(exports, opened, entity)
    assert segment == "0-95"
    opened.write_history(entity, "p", "r", 95, [jsonutil.dumps_str({"_step": 95, "late": "t"})])
    path = _export(exports, entity, segment)
    assert pq.ParquetFile(path).metadata.num_row_groups == 10
    assert same(read_back(path), rows)  # the 96th row (and its key) came after this segment


def test_a_grown_run_gets_a_new_segment_and_the_old_ones_never_change(
    store: tuple[Store, str], files: FileBackend
) -> None:
    """wandb-core caches each parquetUrls entry by its place in the list: a place never changes
    meaning. Segments follow one another from line 0, each written once; unclaimed ones are refused."""
    opened, entity = store
    rows = _fill(opened, entity, 30)
    exports = HistoryExports(opened, files, page_rows=7)
    assert exports.segments(entity, "p", "r", 0) == []
    assert exports.segments(entity, "p", "r", 30) == [(0, 30)]
    first = _export(exports, entity, "0-30").getvalue()
    more = [{"_step": s, "loss": float(s)} for s in range(30, 45)]
    opened.write_history(entity, "p", "r", 30, [jsonutil.dumps_str(row) for row in more])
    assert exports.segments(entity, "p", "r", 45) == [(0, 30), (30, 45)]
    assert exports.segments(entity, "p", "r", 45) == [(0, 30), (30, 45)]  # asked again: the same
    # a replica that saw fewer lines asks: it gets the chain as it stands, no shorter segment
    assert HistoryExports(opened, files).segments(entity, "p", "r", 40) == [(0, 30), (30, 45)]
    assert _export(exports, entity, "0-30").getvalue() == first
    assert same(read_back(_export(exports, entity, "30-45")), more)
    assert same(read_back(_export(exports, entity, "0-30")), rows)
    for unclaimed in ("0-45", "30-40", "45-50"):
        with pytest.raises(ApiError) as raised:
            exports.parquet(entity, "p", "r", unclaimed)
        assert raised.value.code == "NOT_FOUND"


def test_racing_claims_make_one_chain(store: tuple[Store, str], files: FileBackend) -> None:
    """Requests of two servers (and threads within each) claim segments for different line counts
    at once: they all answer with chains that agree, from line 0, without gaps or overlaps."""
    opened, entity = store
    _fill(opened, entity, 100)
    replicas = [HistoryExports(opened, files) for _ in range(2)]
    chains: list[list[tuple[int, int]]] = []

    def claim(i: int) -> None:
        chains.append(replicas[i % 2].segments(entity, "p", "r", 10 + 10 * (i % 9)))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(18)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = replicas[0].segments(entity, "p", "r", 100)
    assert final[0][0] == 0 and final[-1][1] == 100
    assert all(a[1] == b[0] for a, b in itertools.pairwise(final))
    assert all(chain == final[: len(chain)] for chain in chains), (chains, final)


def test_racing_writers_serve_whole_exports(store: tuple[Store, str], files: FileBackend) -> None:
    """Two servers sharing the files (and threads within each) export the same run at once."""
    opened, entity = store
    rows = _fill(opened, entity, 3000)
    replicas = [HistoryExports(opened, files, page_rows=100) for _ in range(2)]
    segment = _segment(replicas[0], opened, entity)
    found: list[Any] = []

    def export(replica: HistoryExports) -> None:
        found.append(_export(replica, entity, segment).getvalue())

    threads = [threading.Thread(target=export, args=(replicas[i % 2],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 6 and len(set(found)) == 1
    assert same(read_back(_export(replicas[0], entity, segment)), rows)
    # the claim and the segment's file; no temporary file left
    assert sorted(found.key for found in files.list(f"~history/{entity}/p/r")) == [
        "0-3000.parquet",
        "0.claim",
    ]


def test_a_full_disk_mid_write_leaves_nothing(
    store: tuple[Store, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened, entity = store
    _fill(opened, entity, 100)
    written: list[int] = []
    real = pq.ParquetWriter.write_table

    def write_table(self: pq.ParquetWriter, table: Any, *args: Any, **kwargs: Any) -> None:
        if len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(table))
        real(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", write_table)
    exports = HistoryExports(opened, tmp_path, page_rows=10)
    segment = _segment(exports, opened, entity)
    with pytest.raises(ApiError) as raised:
        exports.parquet(entity, "p", "r", segment)
    assert raised.value.code == "INTERNAL" and "No space left on device" in str(raised.value)
    folder = tmp_path / "~history" / entity / "p" / "r"
    assert [p.name for p in folder.iterdir()] == ["0.claim"]  # no part of the file
    monkeypatch.setattr(pq.ParquetWriter, "write_table", real)
    assert len(pq.read_table(_export(exports, entity, segment))) == 100  # the next try writes it


def test_an_older_servers_exports_and_stale_parts_are_removed(
    store: tuple[Store, str], tmp_path: Path
) -> None:
    opened, entity = store
    _fill(opened, entity, 5)
    exports = HistoryExports(opened, tmp_path)
    folder = tmp_path / "~history" / entity / "p" / "r"
    folder.mkdir(parents=True)
    for name in ("1-1796000000000.parquet", "5-1796000000001.parquet", ".stale.part", ".fresh.part"):
        (folder / name).write_bytes(b"x")
    old = time.time() - 7200
    import os

    os.utime(folder / ".stale.part", (old, old))
    key = exports.parquet(entity, "p", "r", _segment(exports, opened, entity))
    # a writer of this moment may still own .fresh.part
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [key.rpartition("/")[2], "0.claim", ".fresh.part"]
    )


# ---- a big run through the server, memory measured ----------------------------------------------

BIG_ROWS = 300_000
POST_ROWS = 20_000


def _big_row(step: int) -> dict[str, Any]:
    return {
        "_step": step,
        "_runtime": step * 0.01,
        "_timestamp": 1.7e9 + step * 0.01,
        "loss": 1 / (step + 1),
        "acc": (step % 100) / 100,
        "lr": 1e-3,
        "epoch": step // 1000,
        "phase": "train" if step % 10 else "eval",
        "x": math.nan if step % 1000 == 0 else step * 0.5,
    }


def _rss_while(process: psutil.Process, work: Any) -> tuple[int, int, Any]:
    """(RSS before, peak RSS during, result) of work() with the server's RSS sampled every 10 ms."""
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = work()
    finally:
        done.set()
        sampler.join()
    return before, peak[0], result


def _whole_history_bytes(count: int) -> int:
    """What the rows take held in memory at once, parsed (the least an unpaged export holds)."""
    sample = 20_000
    texts = [json.dumps(_big_row(s)) for s in range(sample)]
    tracemalloc.start()
    rows = [jsonutil.loads(text) for text in texts]
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del rows
    return used * count // sample


def _check_big_export(served: ServerProcess, tmp_path: Path) -> None:
    entity = serving.unique_name("big")
    client = Client(served.url, entity, serving.create_key(served, entity))
    client.upsert("p", "big")
    for offset in range(0, BIG_ROWS, POST_ROWS):
        lines = [json.dumps(_big_row(s)) for s in range(offset, offset + POST_ROWS)]
        body = {"files": {"wandb-history.jsonl": {"offset": offset, "content": lines}}}
        assert client.stream("p", "big", body).status_code == 200
    # a small export first: pyarrow's import (its libraries, ~100 MB of RSS) is no history's cost
    client.upsert("p", "small")
    assert client.stream("p", "small", {"files": {"wandb-history.jsonl": {"offset": 0, "content": lines}}})
    small = client.data(PARQUET, entity=entity, project="p", runName="small", liveKeys=["_step"])
    [url] = small["project"]["run"]["parquetHistory"]["parquetUrls"]
    assert Client(served.url).session.get(url, timeout=600).status_code == 200
    answer = client.data(PARQUET, entity=entity, project="p", runName="big", liveKeys=["_step"])
    [url] = answer["project"]["run"]["parquetHistory"]["parquetUrls"]
    assert served.process is not None
    process = psutil.Process(served.process.pid)
    start = time.monotonic()
    before, peak, response = _rss_while(process, lambda: Client(served.url).session.get(url, timeout=600))
    seconds = time.monotonic() - start
    assert response.status_code == 200, response.text
    where = tmp_path / "big.parquet"
    where.write_bytes(response.content)
    table = pq.read_table(where)
    assert len(table) == BIG_ROWS
    steps = table.column("_step").to_pylist()
    assert steps == list(range(BIG_ROWS))
    xs = table.column("x").to_pylist()
    assert math.isnan(xs[0]) and xs[1] == 0.5 and xs[-1] == (BIG_ROWS - 1) * 0.5
    whole = _whole_history_bytes(BIG_ROWS)
    grown = peak - before
    print(
        f"\nexport of {BIG_ROWS} rows: {seconds:.1f} s ({BIG_ROWS / seconds:,.0f} rows/s), server RSS "
        f"{before >> 20} -> peak {peak >> 20} MiB (+{grown >> 20} MiB); the rows parsed at once: "
        f"{whole >> 20} MiB"
    )
    assert grown < whole // 4, (grown, whole)


def test_a_big_export_keeps_the_servers_memory_bounded(server: ServerProcess, tmp_path: Path) -> None:
    _check_big_export(server, tmp_path)


def test_a_big_export_keeps_the_servers_memory_bounded_postgres(
    pg_server: ServerProcess, tmp_path: Path
) -> None:
    _check_big_export(pg_server, tmp_path)

"""Compaction of a finished run's history into a parquet file (nbtrack/server/compaction.py): every
read answers as before, a resumed run appends, and a crash, a failing object store, a full disk or
a write racing the commit leaves the rows the truth, nothing lost or duplicated. On SQLite with a
folder and on PostgreSQL with S3 (SeaweedFS).

The server's reads of a compacted run (wandb's client, nbtrack.Api, deletion) are in
test_compaction_server.py."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from nbtrack import jsonutil
from nbtrack.server.compaction import BackendArchive, Compactor, parse_duration
from nbtrack.server.file_backend import FileBackend, open_file_backend
from nbtrack.store import ChartRequest, LineBatch, Store
from nbtrack.store.schema import history, history_archives
from tests import serving
from tests.pg_database import fresh_database

WHERE = ("sqlite-folder", "postgresql-s3")


@pytest.fixture(params=WHERE)
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(store URL, --files) of a database and a files backend of the test's own."""
    if request.param == "sqlite-folder":
        yield f"sqlite:///{tmp_path / 'nbtrack.db'}", str(tmp_path / "files")
        return
    base = os.environ.get("NBTRACK_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the compaction tests on PostgreSQL")
    files = serving.files_on("s3")
    assert files is not None
    with fresh_database(base, "nbtrack_compact") as url:
        yield url, files


def row(i: int) -> dict[str, Any]:
    """A history row with what must read back exactly: NaN and infinities, ints, text, nesting."""
    values: dict[str, Any] = {"_step": i, "_runtime": i * 0.5, "_timestamp": 1.7e9 + i, "loss": 1 / (i + 1)}
    if i % 50 == 7:
        values["loss"] = [math.nan, math.inf, -math.inf][i % 3]
    if i % 10 == 0:
        values["img"] = {"_type": "image-file", "path": f"media/images/img_{i}.png", "width": 4}
    if i % 33 == 0:
        values["note"] = "text" if i % 2 else 3  # text and numbers in one key: JSON texts
    if i % 25 == 0:
        values["big"] = 2**62 + i
    if i % 20 == 0:
        values["vec"] = [i, 2.5]  # an int stays an int, in a list too
    if i % 5 == 0:
        values["mix"] = i if i % 2 else i + 0.5  # ints and floats in one key
    return values


def write_run(store: Store, run: str, count: int, *, skip: range = range(0)) -> list[dict[str, Any]]:
    """A finished run of count lines (but skip's, a gap), written in posts of 100; its rows."""
    rows = [row(i) for i in range(count)]
    for start in range(0, count, 100):
        part = [(i, rows[i]) for i in range(start, min(count, start + 100)) if i not in skip]
        for offset, chunk in _runs_of(part):
            store.write_history("e", "p", run, offset, [jsonutil.dumps_str(r) for r in chunk])
    store.finish_run("e", "p", run, state="finished", exit_code=0)
    return [r for i, r in enumerate(rows) if i not in skip]


def _runs_of(part: list[tuple[int, dict[str, Any]]]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    while part:
        first = part[0][0]
        n = 0
        while n < len(part) and part[n][0] == first + n:
            n += 1
        yield first, [r for _, r in part[:n]]
        part = part[n:]


def same(a: Any, b: Any) -> bool:
    """Equal values, NaN and infinities alike, 1 never 1.0; a row's keys in any order (an
    archive's rows hold them in its columns' order)."""
    return json.dumps(a, sort_keys=True, default=asdict) == json.dumps(b, sort_keys=True, default=asdict)


def reads(store: Store, run: str) -> dict[str, Any]:
    """Every read of the run's history the server and the read API make."""
    chart = ChartRequest(keys=None, x="_step", lo=None, hi=None, points=40, raw_limit=300)
    zoomed = ChartRequest(keys=("loss",), x="_runtime", lo=100.0, hi=400.0, points=40, raw_limit=300)
    return {
        "history": store.read_history("e", "p", run),
        "keys": store.read_history("e", "p", run, keys=["note", "big"]),
        "steps": store.read_history("e", "p", run, min_step=150, max_step=420),
        "json": jsonutil.loads(store.history_json("e", "p", run)),
        "sampled": jsonutil.loads(store.history_json("e", "p", run, samples=37)),
        "sampled_keys": jsonutil.loads(store.history_json("e", "p", run, keys=["img"], samples=9)),
        "page": store.history_page("e", "p", run, 95, 420, 50, 1 << 20),
        "gaps": store.history_gaps("e", "p", run),
        "metric_keys": store.history_keys("e", "p", run),
        "chart": store.chart("e", "p", run, chart),
        "zoomed": store.chart("e", "p", run, zoomed),
    }


def history_rows(url: str, run_pk: int | None = None) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stmt = select(func.count()).select_from(history)
            if run_pk is not None:
                stmt = stmt.where(history.c.run_pk == run_pk)
            return int(conn.scalar(stmt) or 0)
    finally:
        engine.dispose()


def archives(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(history_archives)))
    finally:
        engine.dispose()


def archive_files(backend: FileBackend) -> list[str]:
    return sorted(o.key for o in backend.list("~history") if "/compacted/" in o.key)


def later() -> float:
    return time.time() + 1  # every run ended before it


def test_reads_answer_the_same_after_compaction(where: tuple[str, str]) -> None:
    url, files = where
    backend = open_file_backend(files)
    with Store(url) as store:
        rows = write_run(store, "r", 1000, skip=range(500, 530))
        before = reads(store, "r")
        assert same(before["history"], rows)
        [outcome] = Compactor(store, backend).compact(later())
        assert (outcome.path, outcome.result, outcome.rows) == ("e/p/r", "compacted", 970), outcome
        assert history_rows(url) == 0  # the rows moved ...
        [record] = archives(url)
        assert (record.rows, record.line_end, jsonutil.loads(record.gaps)) == (970, 1000, [[500, 530]])
        assert archive_files(backend) == [record.key.removeprefix("~history/")]  # ... into one file
        after = reads(store, "r")
    for name, value in before.items():
        assert same(after[name], value), name
    assert before["gaps"] == [(500, 530)]


def test_a_resumed_run_appends_and_is_compacted_again(where: tuple[str, str]) -> None:
    url, files = where
    backend = open_file_backend(files)
    with Store(url) as store:
        rows = write_run(store, "r", 250)
        compactor = Compactor(store, backend)
        assert [o.result for o in compactor.compact(later())] == ["compacted"]
        first_key = archives(url)[0].key
        # Resumed: new lines after the archived ones, and one archived line sent again (a retry).
        store.upsert_run("e", "p", "r", state="running")
        more = [{"_step": 250 + i, "loss": 0.5, "_runtime": 200.0} for i in range(120)]
        store.write_history("e", "p", "r", 250, [jsonutil.dumps_str(r) for r in more])
        store.write_history("e", "p", "r", 3, [jsonutil.dumps_str({"_step": 3, "loss": -1.0})])
        expected = [*rows, *more]
        expected[3] = {"_step": 3, "loss": -1.0}
        assert same(store.read_history("e", "p", "r"), expected)
        assert compactor.compact(later()) == []  # running: not compacted
        chart = store.chart("e", "p", "r", ChartRequest(("loss",), "_step", None, None, 500, raw_limit=100))
        assert chart is not None and [3.0, -1.0, -1.0] in chart.series["loss"]
        store.finish_run("e", "p", "r", state="finished", exit_code=0)
        [outcome] = compactor.compact(later())
        assert (outcome.result, outcome.rows) == ("compacted", 370), outcome
        assert same(store.read_history("e", "p", "r"), expected)
        assert history_rows(url) == 0
        [record] = archives(url)
        assert record.key != first_key and archive_files(backend) == [record.key.removeprefix("~history/")]


def test_a_resumed_runs_file_stream_posts_chart_as_if_never_compacted(
    where: tuple[str, str], tmp_path: Path
) -> None:
    """The server's write (write_stream, PostgreSQL's pipelined path too) into buckets partly
    archived: each bucket's rollup is computed from its archived lines and the new ones, so the
    chart reads the same as a store's that was never compacted."""
    url, files = where
    backend = open_file_backend(files)
    request = ChartRequest(("loss",), "_step", None, None, 20, raw_limit=10)
    with Store(url) as store, Store(f"sqlite:///{tmp_path / 'reference.db'}") as reference:
        for target in (store, reference):
            write_run(target, "r", 250)
        assert [o.result for o in Compactor(store, backend).compact(later())] == ["compacted"]
        more = [{"_step": 250 + i, "loss": 5.0 + i, "_runtime": 200.0} for i in range(30)]
        retried = {"_step": 3, "loss": -1.0}
        for target in (store, reference):
            target.upsert_run("e", "p", "r", state="running")
            target.write_stream(
                "e", "p", "r", history_lines=LineBatch(250, [jsonutil.dumps_str(r) for r in more])
            )
            target.write_stream("e", "p", "r", history_lines=LineBatch(3, [jsonutil.dumps_str(retried)]))
        chart, expected = (target.chart("e", "p", "r", request) for target in (store, reference))
        assert chart is not None and expected is not None
        assert chart.series == expected.series


def test_only_ended_runs_older_than_the_cutoff_and_a_dry_run_changes_nothing(where: tuple[str, str]) -> None:
    url, files = where
    with Store(url) as store:
        write_run(store, "done", 120)
        store.write_history("e", "p", "live", 0, [jsonutil.dumps_str(row(0))])  # still running
        compactor = Compactor(store, open_file_backend(files))
        assert compactor.compact(time.time() - 3600) == []  # none ended an hour ago
        planned = compactor.compact(later(), dry_run=True)
        assert [(o.path, o.result, o.rows) for o in planned] == [("e/p/done", "would compact", 120)]
        assert history_rows(url) == 121 and archives(url) == []
        assert [o.path for o in compactor.compact(later())] == ["e/p/done"]
        assert history_rows(url) == 1  # the running run's line


def test_two_compactions_at_once_compact_each_run_once(where: tuple[str, str]) -> None:
    url, files = where
    with Store(url) as store:
        expected = {f"r{i}": write_run(store, f"r{i}", 150) for i in range(6)}
    results: list[list[Any]] = []

    def compact() -> None:
        with Store(url) as own:  # a replica of its own
            results.append(Compactor(own, open_file_backend(files)).compact(later()))

    threads = [threading.Thread(target=compact) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    compacted = [o.path for outcomes in results for o in outcomes if o.result == "compacted"]
    assert sorted(compacted) == [f"e/p/r{i}" for i in range(6)], results  # each once, by one of them
    assert len(archives(url)) == 6 and len(archive_files(open_file_backend(files))) == 6
    with Store(url) as store:
        store.attach_archive(BackendArchive(open_file_backend(files)))
        for run, rows in expected.items():
            assert same(store.read_history("e", "p", run), rows), run


class _Failing:
    """A files backend that fails one way (fault injection), else the real one's."""

    def __init__(self, real: FileBackend, fault: str, store: Store | None = None) -> None:
        self.real, self.fault, self.store = real, fault, store
        self.location = real.location

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def put_file(self, key: str, path: Path) -> None:
        if self.fault == "put":
            raise OSError(5, "Input/output error (the object store failed)")
        if self.fault == "write meanwhile" and self.store is not None:
            self.store.upsert_run("e", "p", "r", state="running")  # resumed while compacting
            self.store.write_history("e", "p", "r", 200, [jsonutil.dumps_str({"_step": 200, "late": 1})])
        self.real.put_file(key, path)

    def open(self, key: str, first: int = 0, last: int | None = None) -> Any:
        opened = self.real.open(key, first, last)
        if self.fault == "corrupt" and opened is not None:
            chunks = list(opened.chunks)
            chunks[0] = bytes([chunks[0][0] ^ 1]) + chunks[0][1:]
            return type(opened)(opened.size, iter(chunks))
        return opened

    def temp_path(self) -> Path:
        temp = self.real.temp_path()
        if self.fault == "full disk":  # a file whose every write fails with ENOSPC, as on a full disk
            temp.unlink()
            temp.symlink_to("/dev/full")
        return temp


@pytest.mark.parametrize("fault", ["put", "corrupt", "full disk", "write meanwhile"])
def test_a_failure_before_the_commit_keeps_the_rows(where: tuple[str, str], fault: str) -> None:
    url, files = where
    real = open_file_backend(files)
    with Store(url) as store:
        rows = write_run(store, "r", 200)
        failing = _Failing(real, fault, store)
        [outcome] = Compactor(store, failing).compact(later())  # type: ignore[arg-type]
        if fault == "write meanwhile":
            assert (outcome.result, outcome.detail) == (
                "skipped",
                "the run was written meanwhile (resumed, or lines sent again)",
            ), outcome
            rows.append({"_step": 200, "late": 1})
        else:
            assert outcome.result == "failed" and "its rows are kept" in outcome.detail, outcome
        if fault == "full disk":
            assert "No space left on device" in outcome.detail, outcome
        if fault == "corrupt":
            assert "does not read back as written" in outcome.detail, outcome
        assert archives(url) == [] and archive_files(real) == []  # nothing half done left
        assert history_rows(url) == len(rows)
        assert same(store.read_history("e", "p", "r"), rows)
        if fault != "write meanwhile":  # the next compaction, without the fault, succeeds
            assert [o.result for o in Compactor(store, real).compact(later())] == ["compacted"]
            assert same(store.read_history("e", "p", "r"), rows)


_KILLED_BEFORE_COMMIT = """
import os, sys
from nbtrack.store.compactions import Compactions
Compactions.commit_compaction = lambda *a, **k: os._exit(9)  # the process dies before its commit
from nbtrack.cli import main
sys.exit(main(sys.argv[1:]))
"""


def compact_command(
    url: str, files: str, *extra: str, script: str | None = None
) -> subprocess.CompletedProcess[str]:
    args = ["server", "compact", "--db", url, "--files", files, "--older-than", "0", *extra]
    command = (
        [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "nbtrack.cli", *args]
    )
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=serving.subprocess_env())


def test_a_process_killed_before_its_commit_loses_nothing(where: tuple[str, str]) -> None:
    url, files = where
    backend = open_file_backend(files)
    with Store(url) as store:
        rows = write_run(store, "r", 300)
    killed = compact_command(url, files, script=_KILLED_BEFORE_COMMIT)
    assert killed.returncode == 9, killed.stdout + killed.stderr
    assert len(archive_files(backend)) == 1  # written and verified, never committed: an orphan
    assert archives(url) == [] and history_rows(url) == 300
    with Store(url) as store:
        assert same(store.read_history("e", "p", "r"), rows)
    # Its claim outlives it for the lease: the next command waits it out, unless ...
    waiting = compact_command(url, files)
    assert waiting.returncode == 0 and "another compaction is compacting it" in waiting.stdout, waiting.stdout
    engine = create_engine(url)  # ... the lease has passed (here: made to)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE compaction_claims SET claimed_at = claimed_at - 7200")
    engine.dispose()
    again = compact_command(url, files)
    assert again.returncode == 0 and "compacted" in again.stdout, again.stdout + again.stderr
    [record] = archives(url)
    assert archive_files(backend) == [record.key.removeprefix("~history/")]  # the orphan removed
    assert history_rows(url) == 0
    with Store(url) as store:
        store.attach_archive(BackendArchive(backend))
        assert same(store.read_history("e", "p", "r"), rows)


def test_a_store_read_without_the_files_names_the_archive(where: tuple[str, str]) -> None:
    url, files = where
    with Store(url) as store:
        write_run(store, "r", 120)
        Compactor(store, open_file_backend(files)).compact(later())
    with Store(url) as bare, pytest.raises(Exception, match="compacted into ~history/e/p/r/compacted/"):
        bare.read_history("e", "p", "r")


def test_durations() -> None:
    assert [parse_duration(t) for t in ("0", "90", "90s", "30m", "12h", "7d")] == [
        0,
        90,
        90,
        1800,
        43200,
        604800,
    ]
    for bad in ("", "soon", "-1h", "1w"):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_duration(bad)


def test_the_read_api_on_a_servers_root_reads_and_deletes_a_compacted_run(tmp_path: Path) -> None:
    """nbtrack.Api(dir=ROOT) on the root of a server run with --dir ROOT: its files are ROOT/files."""
    import nbtrack

    with Store.at_root(tmp_path) as store:
        rows = write_run(store, "r", 150)
        assert [
            o.result for o in Compactor(store, open_file_backend(str(tmp_path / "files"))).compact(later())
        ] == ["compacted"]
    api = nbtrack.Api(dir=tmp_path)
    run = api.run("e/p/r")
    assert same(run.history(), rows)
    assert same(
        run.history(keys=["vec"]), [{"_step": r["_step"], "vec": r["vec"]} for r in rows if "vec" in r]
    )
    run.delete()
    assert not (tmp_path / "files" / "~history" / "e" / "p" / "r").exists()
    api.close()

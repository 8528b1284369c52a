"""A run's full history read back from database rows and from its compacted parquet file.

    python benchmarks/bench_compaction.py [--rows 10000000] [--quick]

For each setup, SQLite with a files folder, and PostgreSQL (NBTRACK_TEST_POSTGRES_URL: a database
of its own, dropped after) with an S3 bucket (NBTRACK_TEST_S3_URL: SeaweedFS, .ci/seaweedfs.sh)
when both are set:

1. a finished run of --rows history rows (five keys: _step, _runtime, _timestamp, loss, acc) is
   put straight into the database (COPY on PostgreSQL, one executemany on SQLite), with the
   rollup's line counts per bucket that compaction checks;
2. its full history is read back (Store.read_history, what nbtrack.Api().run().history() does
   on a local store and the server's history query does) in a fresh process: seconds, peak RSS;
3. `Compactor.compact` moves it into one parquet file (seconds);
4. the same read again in a fresh process (the parquet file read from the folder or the bucket);
5. the database's size before and after (after VACUUM, which gives the freed pages back), and
   the parquet file's.

Both reads must give the same row count and the same sum of steps, or the script fails. Bounded:
it refuses to start without about 400 bytes of free disk per row, and each read gets 20 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nbtrack.server.compaction import Compactor
from nbtrack.server.file_backend import open_file_backend
from nbtrack.store import Store
from nbtrack.store.rollup import BUCKET_LINES

DISK_PER_ROW = 400  # bytes: rows, their index, the WAL, the parquet file
READ_TIMEOUT = 1200.0


def text(i: int) -> str:
    return (
        f'{{"_step":{i},"_runtime":{i * 0.01!r},"_timestamp":{1.7e9 + i * 0.01!r},'
        f'"loss":{1 / (i + 1)!r},"acc":{(i % 100) / 100!r}}}'
    )


def stamps(first: int, last: int) -> tuple[float, float, int, int]:
    """ts_min, ts_max, y_min, y_max of a bucket's "_step" rollup row."""
    return 1.7e9 + first * 0.01, 1.7e9 + last * 0.01, first, last


def rollup(pk: int, rows: int) -> list[tuple[Any, ...]]:
    """The rollup's "_step" rows: each bucket's line count and x ranges (what compaction checks)."""
    out = []
    for bucket in range(0, (rows + BUCKET_LINES - 1) // BUCKET_LINES):
        first, last = bucket * BUCKET_LINES, min(rows, (bucket + 1) * BUCKET_LINES) - 1
        out.append(
            (
                pk,
                "_step",
                bucket,
                last - first + 1,
                first,
                last,
                first * 0.01,
                last * 0.01,
                *stamps(first, last),
            )
        )
    return out


def generate(url: str, rows: int) -> None:
    """A finished run e/p/big of rows history lines, written straight into the database."""
    with Store(url) as store:
        store.write_history("e", "p", "big", 0, [text(0)])
        store.finish_run("e", "p", "big", state="finished", exit_code=0)
    columns = "run_pk, key, bucket, count, step_min, step_max, runtime_min, runtime_max, ts_min, ts_max"
    columns += ", y_min, y_max"
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        pk = conn.execute("SELECT pk FROM runs WHERE run_id = 'big'").fetchone()[0]
        conn.execute("DELETE FROM history_rollup WHERE run_pk = ?", (pk,))
        conn.executemany(
            "INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?)", ((pk, i, i, text(i)) for i in range(rows))
        )
        conn.executemany(
            f"INSERT INTO history_rollup ({columns}) VALUES ({', '.join('?' * 12)})", rollup(pk, rows)
        )
        conn.execute(
            "UPDATE runs SET history_line_count = ?, last_step = ? WHERE pk = ?", (rows, rows - 1, pk)
        )
        conn.commit()
        conn.close()
        return
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        pk = conn.execute("SELECT pk FROM runs WHERE run_id = 'big'").fetchone()[0]  # type: ignore[index]
        conn.execute("DELETE FROM history WHERE run_pk = %s", (pk,))
        conn.execute("DELETE FROM history_rollup WHERE run_pk = %s", (pk,))
        with conn.cursor() as cur, cur.copy("COPY history (run_pk, line, step, data) FROM STDIN") as copy:
            for i in range(rows):
                copy.write_row((pk, i, i, text(i)))
        with conn.cursor() as cur, cur.copy(f"COPY history_rollup ({columns}) FROM STDIN") as copy:
            for values in rollup(pk, rows):
                copy.write_row(values)
        conn.execute(
            "UPDATE runs SET history_line_count = %s, last_step = %s WHERE pk = %s", (rows, rows - 1, pk)
        )
        conn.execute("ANALYZE history")


def read_child(url: str, files: str) -> dict[str, Any]:
    """Store.read_history of the run in a fresh process: seconds, rows, sum of steps, peak RSS."""
    code = (
        "import json, resource, sys, time\n"
        "from nbtrack.server.compaction import BackendArchive\n"
        "from nbtrack.server.file_backend import open_file_backend\n"
        "from nbtrack.store import Store\n"
        "store = Store(sys.argv[1])\n"
        "store.attach_archive(BackendArchive(open_file_backend(sys.argv[2])))\n"
        "start = time.perf_counter()\n"
        "rows = store.read_history('e', 'p', 'big')\n"
        "seconds = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "print(json.dumps({'seconds': seconds, 'rows': len(rows), 'steps': sum(r['_step'] for r in rows),"
        " 'peak': peak}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    done = subprocess.run(
        [sys.executable, "-c", code, url, files],
        capture_output=True,
        text=True,
        timeout=READ_TIMEOUT,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"the read failed: {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def database_size(url: str) -> int:
    """Bytes the database takes, after VACUUM has given freed pages back."""
    if url.startswith("sqlite"):
        import sqlite3

        path = url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        conn.close()
        return os.path.getsize(path)
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("VACUUM FULL")
        size: int = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
        return size


def measure(setup: str, url: str, files: str, rows: int) -> dict[str, Any]:
    started = time.perf_counter()
    generate(url, rows)
    made = time.perf_counter() - started
    print(f"{setup}: {rows:,} rows put in the database in {made:.1f} s", flush=True)
    size_before = database_size(url)
    from_rows = read_child(url, files)
    print(f"{setup}: read from rows in {from_rows['seconds']:.1f} s", flush=True)
    with Store(url) as store:
        started = time.perf_counter()
        [outcome] = Compactor(store, open_file_backend(files)).compact(time.time() + 1)
        compaction = time.perf_counter() - started
    if outcome.result != "compacted":
        raise SystemExit(f"{setup}: the compaction did not happen: {outcome}")
    print(f"{setup}: compacted in {compaction:.1f} s", flush=True)
    size_after = database_size(url)
    from_parquet = read_child(url, files)
    if (from_rows["rows"], from_rows["steps"]) != (from_parquet["rows"], from_parquet["steps"]) or from_rows[
        "rows"
    ] != rows:
        raise SystemExit(f"{setup}: the reads differ: {from_rows} vs {from_parquet}")
    return {
        "setup": setup,
        "rows": rows,
        "read_rows": from_rows["seconds"],
        "read_parquet": from_parquet["seconds"],
        "rss_rows": from_rows["peak"],
        "rss_parquet": from_parquet["peak"],
        "compaction": compaction,
        "db_before": size_before,
        "db_after": size_after,
        "parquet": outcome.size,
    }


def table(results: list[dict[str, Any]]) -> str:
    mb = 1e6
    lines = [
        "setup                   | rows       | read: rows (s) | read: parquet (s) | rows/parquet "
        "| compaction (s) | database before -> after (MB) | parquet (MB) | peak RSS rows / parquet (MB)",
        "------------------------+------------+----------------+-------------------+--------------"
        "+----------------+-------------------------------+--------------+-----------------------------",
    ]
    for r in results:
        lines.append(
            f"{r['setup']:<23} | {r['rows']:>10,} | {r['read_rows']:>14.2f} | {r['read_parquet']:>17.2f} | "
            f"{r['read_rows'] / r['read_parquet']:>11.2f}x | {r['compaction']:>14.1f} | "
            f"{r['db_before'] / mb:>12,.0f} -> {r['db_after'] / mb:>12,.1f} | {r['parquet'] / mb:>12,.1f} | "
            f"{r['rss_rows'] / mb:>12,.0f} / {r['rss_parquet'] / mb:>12,.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 rows: a smoke run")
    args = parser.parse_args()
    rows = 20_000 if args.quick else args.rows
    results = []
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-compaction-") as tmp:
        free = shutil.disk_usage(tmp).free
        if free < rows * DISK_PER_ROW:
            need = rows * DISK_PER_ROW / 1e9
            raise SystemExit(f"{rows:,} rows need about {need:.1f} GB free; {tmp} has {free / 1e9:.1f}")
        folder = Path(tmp) / "sqlite"
        folder.mkdir()
        results.append(
            measure("SQLite + folder", f"sqlite:///{folder / 'nbtrack.db'}", str(folder / "files"), rows)
        )
        base, bucket = os.environ.get("NBTRACK_TEST_POSTGRES_URL"), os.environ.get("NBTRACK_TEST_S3_URL")
        if base and bucket:
            from tests.pg_database import fresh_database

            files = f"{bucket.rstrip('/')}/bench-{uuid.uuid4().hex[:10]}"
            with fresh_database(base, "nbtrack_bench") as url:
                results.append(measure("PostgreSQL + S3", url, files, rows))
            open_file_backend(files).delete_prefix("~history")
        else:
            print("PostgreSQL + S3: skipped (set NBTRACK_TEST_POSTGRES_URL and NBTRACK_TEST_S3_URL)")
    print()
    print(table(results))
    print(f"\n(peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:,.0f} MB)")


if __name__ == "__main__":
    main()

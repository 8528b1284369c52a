"""Peak memory when every row is megabytes and the rows wait in the transaction log.

    python benchmarks/bench_big_rows.py [--rows 200] [--row-mb 2] [--only recover]

Each scenario runs in fresh subprocesses and logs `--rows` rows of one string of `--row-mb` MB:

- recover: a local run logs every row while the store is locked (so they wait in the log), then
  its internal process is SIGKILLed; the process that replaces it reads the whole log back to
  deliver it. Measured: that new internal process's peak RSS.
- sync: an offline run's log is replayed by `nbtrack sync` into a fresh store. Measured: the
  sync process's peak RSS.
- live: a local run logs every row as fast as it can while the store is locked for 5 s.
  Measured: the internal process's peak RSS.

Peak RSS is VmHWM, sampled every 10 ms from outside the process. The stored row count is checked.
To compare with another checkout, run the script with PYTHONPATH set to it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULT_MARK = "BENCH_RESULT "
MB = 10**6
SCENARIOS = ("recover", "sync", "live")


class PeakRss(threading.Thread):
    """VmHWM of the process `pid()` names (it may change) every 10 ms, until `done` is set."""

    def __init__(self, pid: Callable[[], int | None]) -> None:
        super().__init__(name="peak-rss", daemon=True)
        self.pid, self.peaks = pid, dict[int, int]()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.01):
            pid = self.pid()
            try:
                match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
            except OSError:
                continue  # not started yet, or gone: its last reading stands
            if pid is not None and match:
                self.peaks[pid] = max(self.peaks.get(pid, 0), int(match[1]) * 1024)


class StoreLock(threading.Thread):
    """An EXCLUSIVE lock on the SQLite store through a connection of its own, until released."""

    def __init__(self, db: Path) -> None:
        super().__init__(name="store-lock", daemon=True)
        self.db, self.locked, self.release = db, threading.Event(), threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self.db, isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            self.locked.set()
            self.release.wait()
            conn.execute("COMMIT")
        finally:
            conn.close()


def stored_rows(workdir: Path) -> int:
    from nbtrack.store import Store

    with Store.at_root(workdir) as store:
        row = store.get_run(None, "bench", "bigrows")
        return 0 if row is None else int(row.history_line_count)


def recover(rows: int, value: str, workdir: Path) -> dict[str, Any]:
    import nbtrack

    run = nbtrack.init(project="bench", dir=workdir, id="bigrows")
    connection = run._connection
    assert connection is not None
    lock = StoreLock(workdir / "nbtrack.db")
    lock.start()
    assert lock.locked.wait(30)
    for i in range(rows):
        run.log({"s": value, "i": i})
    # Every row is in the log, and acknowledged: the user side re-sends none of them.
    while run.status().rows_logged < rows or connection.outbox.calls_not_acknowledged():
        time.sleep(0.05)
    killed = connection.process.pid
    assert killed is not None
    sampler = PeakRss(lambda: connection.process.pid)
    sampler.start()
    os.kill(killed, signal.SIGKILL)
    while connection.process.pid == killed:
        time.sleep(0.01)
    lock.release.set()
    run.finish()
    sampler.done.set()
    sampler.join()
    peak = max(peak for pid, peak in sampler.peaks.items() if pid != killed)  # the new process's
    return {"peak": peak, "stored": stored_rows(workdir)}


def sync(rows: int, value: str, workdir: Path) -> dict[str, Any]:
    import nbtrack

    with nbtrack.init(project="bench", dir=workdir, id="bigrows", mode="offline") as run:
        for i in range(rows):
            run.log({"s": value, "i": i})
    log = next(run.dir.glob("*.nbt"))
    command = [sys.executable, "-m", "nbtrack.cli", "sync", str(log), "--dir", str(workdir)]
    # From the run's folder: `-m` would put the current folder (maybe a checkout) first on the path.
    replay = subprocess.Popen(command, stdout=subprocess.DEVNULL, cwd=workdir)
    sampler = PeakRss(lambda: replay.pid)
    sampler.start()
    assert replay.wait() == 0
    sampler.done.set()
    sampler.join()
    return {"peak": sampler.peaks[replay.pid], "stored": stored_rows(workdir)}


def live(rows: int, value: str, workdir: Path) -> dict[str, Any]:
    import nbtrack

    run = nbtrack.init(project="bench", dir=workdir, id="bigrows")
    assert run._connection is not None
    pid = run._connection.process.pid
    sampler = PeakRss(lambda: pid)
    sampler.start()
    lock = StoreLock(workdir / "nbtrack.db")
    lock.start()
    assert lock.locked.wait(30)
    threading.Timer(5.0, lock.release.set).start()
    for i in range(rows):
        run.log({"s": value, "i": i})
    run.finish()
    sampler.done.set()
    sampler.join()
    return {"peak": sampler.peaks[pid] if pid is not None else 0, "stored": stored_rows(workdir)}


def measure(scenario: str, rows: int, row_mb: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, __file__, "--child", tmp, "--only", scenario]
        out = subprocess.run(
            [*command, "--rows", str(rows), "--row-mb", str(row_mb)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "NBTRACK_STATS_INTERVAL": "0"},
        ).stdout
    line = next(line for line in out.splitlines() if line.startswith(RESULT_MARK))
    result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--row-mb", type=float, default=2.0)
    parser.add_argument("--only", choices=SCENARIOS, help="one scenario (default: all)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        scenario = {"recover": recover, "sync": sync, "live": live}[args.only]
        result = scenario(args.rows, "x" * int(args.row_mb * MB), args.child)
        print(RESULT_MARK + json.dumps(result))
        return
    print(f"{args.rows} rows of {args.row_mb:g} MB ({args.rows * args.row_mb:,.0f} MB)")
    for scenario in [args.only] if args.only else SCENARIOS:
        result = measure(scenario, args.rows, args.row_mb)
        peak, stored = result["peak"] / MB, result["stored"]
        print(f"  {scenario:8} peak RSS {peak:7,.0f} MB   rows stored {stored} of {args.rows}")


if __name__ == "__main__":
    main()

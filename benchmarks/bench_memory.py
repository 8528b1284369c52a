"""The user process's memory while its internal process is stopped: bounded outbox vs unbounded.

    python benchmarks/bench_memory.py [--rows 2000000] [--quick]

Each column runs in a fresh subprocess: init() a local run, stop its internal process (SIGSTOP,
with the hang timeout raised so it is not replaced), log N rows of 10 floats, wait until the
outbox has encoded them all, and read the user process's peak RSS growth. Then the process is
resumed, finish() stores everything, and the stored row count is checked. "bounded" is the
default limit (NBTRACK_MAX_MEMORY_MB=64: past it rows go to the run folder's spill file);
"unbounded" sets the limit past the whole backlog, which is how the outbox behaved before.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULT_MARK = "BENCH_RESULT "
MB = 2**20


def _vm_hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _vm_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def child(rows: int, workdir: Path) -> dict[str, Any]:
    import nbtrack
    from nbtrack.store import Store

    data = [{f"m{k}": float(i * 10 + k) for k in range(10)} for i in range(rows)]
    run = nbtrack.init(project="bench", dir=workdir, id="memory")
    time.sleep(1.5)  # a heartbeat arrives first: the run is fully up
    assert run._connection is not None
    connection = run._connection
    pid = connection.process.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _vm_rss_kb()
    started = time.perf_counter()
    for row in data:
        run.log(row)
    loop = time.perf_counter() - started
    while connection.outbox.calls_encoded < rows:
        time.sleep(0.01)
    encoded = time.perf_counter() - started
    growth = (_vm_hwm_kb() - before) * 1024
    spilled = connection.outbox.spilled_bytes
    in_memory = connection.outbox.retained_bytes
    os.kill(pid, signal.SIGCONT)
    started = time.perf_counter()
    run.finish()
    finish = time.perf_counter() - started
    with Store.at_root(workdir) as store:
        stored = store.get_run(None, "bench", "memory").history_line_count
    return {
        "log_us": loop / rows * 1e6,
        "encoded_s": encoded,
        "growth": growth,
        "in_memory": in_memory,
        "spilled": spilled,
        "finish_s": finish,
        "stored": stored,
    }


def run_child(rows: int, limit_mb: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NBTRACK_MAX_MEMORY_MB": str(limit_mb), "NBTRACK_HANG_TIMEOUT": "3600"}
        done = subprocess.run(
            [sys.executable, __file__, "--child", "--rows", str(rows), "--workdir", tmp],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        for line in done.stdout.splitlines():
            if line.startswith(RESULT_MARK):
                result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
                return result
        raise RuntimeError(f"the child printed no result:\n{done.stdout}\n{done.stderr}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--limit-mb", type=float, default=64.0)
    parser.add_argument("--quick", action="store_true", help="100,000 rows, a 4 MB limit")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(RESULT_MARK + json.dumps(child(args.rows, args.workdir)), flush=True)
        return 0
    rows, limit = (100_000, 4.0) if args.quick else (args.rows, args.limit_mb)
    columns = {"bounded": run_child(rows, limit), "unbounded": run_child(rows, 1e6)}
    print(f"{rows:,} rows of 10 floats logged while the internal process is stopped (SIGSTOP)\n")
    table = [
        ("log() per call (µs)", "log_us", lambda v: f"{v:.2f}"),
        ("all rows encoded after (s)", "encoded_s", lambda v: f"{v:.1f}"),
        ("user process peak growth (MB)", "growth", lambda v: f"{v / MB:.0f}"),
        ("rows waiting in memory (MB)", "in_memory", lambda v: f"{v / MB:.1f}"),
        ("rows in the spill file (MB)", "spilled", lambda v: f"{v / MB:.0f}"),
        ("finish() once resumed (s)", "finish_s", lambda v: f"{v:.1f}"),
        ("rows stored", "stored", lambda v: f"{v:,}"),
    ]
    print(f"{'':34}{f'bounded ({limit:g} MB)':>22}{'unbounded':>14}{'ratio':>8}")
    for label, key, shown in table:
        a, b = columns["bounded"][key], columns["unbounded"][key]
        ratio = f"{a / b:.2f}x" if b else "-"
        print(f"{label:34}{shown(a):>22}{shown(b):>14}{ratio:>8}")
    ok = all(column["stored"] == rows for column in columns.values())
    bounded = columns["bounded"]["in_memory"] <= limit * MB
    print(
        f"\nevery row stored in both: {'yes' if ok else 'NO'}; memory held under the limit: "
        f"{'yes' if bounded else 'NO'}"
    )
    return 0 if ok and bounded else 1


if __name__ == "__main__":
    sys.exit(main())

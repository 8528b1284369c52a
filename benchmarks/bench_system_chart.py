"""What the System section's query costs: Run.systemChart against reading every events line.

    python benchmarks/bench_system_chart.py [--quick]

A run's system metrics are events lines (nine keys a line, as nbtrack's sampler writes them), one
every 5 s: a day is 17,280 lines, a week 120,960. For each length, in a SQLite store:
`Store.system_chart` (what the UI asks: every key downsampled to at most 500 min/max groups) and
`Store.read_events` (every line, what a page would need without it), wall time (median of three)
and the answer's size in bytes. The ratio column says how many times fewer bytes the chart sends.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nbtrack.store import Store, SystemChartRequest

INTERVAL = 5.0  # seconds between samples: nbtrack's default
KEYS = (
    "system.cpu",
    "system.memory",
    "system.memory.available_mb",
    "system.proc.cpu",
    "system.proc.memory.rss_mb",
    "system.disk.read_mb_s",
    "system.disk.write_mb_s",
    "system.network.sent_mb_s",
    "system.network.recv_mb_s",
)
WRITE_BATCH = 20_000


def seed(store: Store, run_id: str, lines: int) -> None:
    chosen = random.Random(lines)
    store.upsert_run("local", "bench", run_id)
    for start in range(0, lines, WRITE_BATCH):
        batch = [
            json.dumps(
                {
                    "_timestamp": 1.7e9 + i * INTERVAL,
                    "_runtime": i * INTERVAL,
                    **{k: chosen.random() * 100 for k in KEYS},
                }
            )
            for i in range(start, min(lines, start + WRITE_BATCH))
        ]
        store.write_events("local", "bench", run_id, start, batch)


def chart_text(store: Store, run_id: str) -> str:
    found = store.system_chart(
        "local", "bench", run_id, SystemChartRequest(None, "_runtime", None, None, 500)
    )
    assert found is not None
    return found.to_json()


def timed(read: Callable[[], Any]) -> tuple[float, Any]:
    """(median seconds of three reads, the last answer)."""
    times, answer = [], None
    for _ in range(3):
        started = time.perf_counter()
        answer = read()
        times.append(time.perf_counter() - started)
    return statistics.median(times), answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1,000 and 5,000 lines")
    args = parser.parse_args()
    lengths = [("1,000 lines", 1_000), ("5,000 lines", 5_000)] if args.quick else [
        ("a day (17,280 lines)", 17_280),
        ("a week (120,960 lines)", 120_960),
    ]  # fmt: skip
    print(
        f"bench_system_chart {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}; {len(KEYS)} keys a line, SQLite\n"
    )
    columns = (("run length", 24), ("systemChart", 13), ("bytes", 11), ("all events", 13), ("bytes", 13))
    header = "".join(
        f"{name:<{width}}" if i == 0 else f"{name:>{width}}" for i, (name, width) in enumerate(columns)
    )
    header += f"{'bytes ratio':>13}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp, Store.at_root(tmp) as store:
        for name, lines in lengths:
            run_id = f"r{lines}"
            seed(store, run_id, lines)
            chart_s, chart = timed(lambda run_id=run_id: chart_text(store, run_id))
            events_s, events = timed(
                lambda run_id=run_id: json.dumps(store.read_events("local", "bench", run_id))
            )
            chart_bytes, events_bytes = len(chart), len(events)
            print(
                f"{name:<24}{chart_s * 1000:>10.0f} ms{chart_bytes:>11,}{events_s * 1000:>10.0f} ms"
                f"{events_bytes:>13,}{events_bytes / chart_bytes:>12.0f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The notebook explorer on a big run: what `nbtrack.compare` reads and syncs, local and online.

    python benchmarks/bench_explorer.py [--rows 1000000] [--repeats 3] [--quick]

A store gets a run of --rows history rows (_step, _runtime, _timestamp and five metrics, as
workload.py makes them for the server benchmarks) and a run of 1,000, written with the store's own
history writes (rollup included). Then, each the median of --repeats, side by side:
1. compare(small, small) and compare(big, small) from the folder: the time to make the widget's
   view (runs, config and summary read, one chart read per run), and the JSON bytes the widget
   syncs; the big run's charts come from the rollup, at most CHART_POINTS points per metric.
2. The same two from a real `nbtrack server` serving that folder (base_url=).
3. The static snapshot (text/plain and text/html with inline SVG) of the big comparison.
The ratio column is big / small: near 1 means the big run costs what a short one does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.serving starts the server
from benchmarks.workload import history_bodies
from nbtrack import jsonutil
from nbtrack.extension.explorer import ExplorerWidget, compare_widget
from nbtrack.extension.explorer_data import CHART_POINTS
from nbtrack.settings import DEFAULT_ENTITY
from nbtrack.store import Store
from tests.serving import start_server

PROJECT = "bench"
SMALL_ROWS = 1_000


def seed(root: Path, run_id: str, rows: int) -> None:
    with Store.at_root(root) as store:
        store.upsert_run(
            DEFAULT_ENTITY, PROJECT, run_id, display_name=f"{rows:,} rows", config={"rows": rows}
        )
        for body in history_bodies(rows):
            post = json.loads(body)["files"]["wandb-history.jsonl"]
            store.write_history(DEFAULT_ENTITY, PROJECT, run_id, post["offset"], post["content"])
        store.write_summary(DEFAULT_ENTITY, PROJECT, run_id, {"loss": 0.5, "acc": {"max": 1.0}})
        store.finish_run(DEFAULT_ENTITY, PROJECT, run_id, state="finished", exit_code=0)


def timed(make: Callable[[], ExplorerWidget], repeats: int) -> tuple[float, ExplorerWidget]:
    """The median seconds make() took, and its last widget."""
    times, widget = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        widget = make()
        times.append(time.perf_counter() - started)
    assert widget is not None
    return statistics.median(times), widget


def synced_bytes(widget: ExplorerWidget) -> int:
    return len(jsonutil.dumps_str(widget.view))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="history rows of the big run (1,000,000)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per figure (median shown)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 50,000 rows, 1 repeat")
    args = parser.parse_args()
    rows, repeats = (50_000, 1) if args.quick else (args.rows, args.repeats)
    print(
        f"bench_explorer {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        flush=True,
    )
    results: list[tuple[str, float, float, str]] = []  # what, small, big, unit
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder))
        try:
            assert server.dir is not None
            started = time.perf_counter()
            seed(server.dir, "big", rows)
            seed(server.dir, "small", SMALL_ROWS)
            seed(server.dir, "small2", SMALL_ROWS)
            print(
                f"seeded {rows:,} + {2 * SMALL_ROWS:,} rows in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            small_pair = (f"{PROJECT}/small", f"{PROJECT}/small2")
            big_pair = (f"{PROJECT}/big", f"{PROJECT}/small")
            for where, options in (("folder", {"dir": server.dir}), ("server", {"base_url": server.url})):
                small_s, small = timed(lambda o=options: compare_widget(*small_pair, **o), repeats)  # type: ignore[arg-type]
                big_s, big = timed(lambda o=options: compare_widget(*big_pair, **o), repeats)  # type: ignore[arg-type]
                results.append((f"{where}: compare() view made", small_s * 1000, big_s * 1000, "ms"))
                results.append(
                    (
                        f"{where}: view synced (JSON)",
                        synced_bytes(small) / 1000,
                        synced_bytes(big) / 1000,
                        "kB",
                    )
                )
            points = max(len(s["xs"]) for chart in big.view["charts"] for s in chart["series"])
            small_snap, _ = timed(lambda: _snapshot(small), repeats)
            big_snap, _ = timed(lambda: _snapshot(big), repeats)
            results.append(("static snapshot (text + HTML/SVG)", small_snap * 1000, big_snap * 1000, "ms"))
        finally:
            server.stop()
    print(
        f"\nthe big run: {rows:,} rows; a chart draws at most {CHART_POINTS} points a run (big: {points})\n"
    )
    header = f"{'figure':<36} {'1,000 + 1,000':>14}  {f'{rows:,} + 1,000':>16}  {'big/small':>9}"
    print(header)
    print("-" * len(header))
    for what, small_value, big_value, unit in results:
        ratio = big_value / small_value if small_value else float("nan")
        print(f"{what:<36} {small_value:>10.1f} {unit:<3} {big_value:>12.1f} {unit:<3}  {ratio:>8.2f}x")
    return 0


def _snapshot(widget: ExplorerWidget) -> ExplorerWidget:
    widget.text_summary()
    widget.html_summary()
    return widget


if __name__ == "__main__":
    sys.exit(main())

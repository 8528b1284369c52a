"""The CPU cost of system-metrics sampling, against the target of < 1% of a core at the default interval.

    python benchmarks/bench_stats.py [--samples 200] [--seconds 20] [--quick]

1. In process: SystemSampler.sample() called --samples times; CPU seconds per sample (thread time).
2. In a real run: an idle local run of --seconds with sampling every 0.25 s, then one with sampling
   off; the internal process's CPU time (user + system, from psutil) difference divided by the
   number of samples stored gives the cost per sample as the product pays it (thread wake-ups,
   the record through writer and sender, the store write).
Both are scaled to the default interval (5 s) as a share of one core; ratio > 1 is better than
the target.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import nbtrack
from nbtrack.internal.system_metrics import DEFAULT_INTERVAL, SystemSampler
from nbtrack.store import Store

TARGET = 1.0  # % of one core at the default interval
LIVE_INTERVAL = 0.25


def in_process(samples: int) -> float:
    """CPU seconds per sample, median of five batches."""
    sampler = SystemSampler(os.getpid())
    per_batch = []
    for _ in range(5):
        started = time.thread_time()
        for _ in range(samples // 5):
            sampler.sample()
        per_batch.append((time.thread_time() - started) / (samples // 5))
    return statistics.median(per_batch)


def idle_run(root: Path, run_id: str, interval: float, seconds: float) -> tuple[float, int]:
    """(CPU seconds of the internal process, events stored) for an idle run of `seconds`."""
    os.environ["NBTRACK_STATS_INTERVAL"] = str(interval)
    run = nbtrack.init(project="bench", dir=root, id=run_id)
    assert run._connection.process is not None and run._connection.process.pid is not None
    process = psutil.Process(run._connection.process.pid)
    time.sleep(1.0)  # start-up (imports, store) is not sampling's cost
    before = process.cpu_times()
    time.sleep(seconds)
    after = process.cpu_times()
    run.finish()
    with Store.at_root(root) as store:
        events = len(store.read_events("local", "bench", run_id))
    used = (after.user - before.user) + (after.system - before.system)
    return used, events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 50 samples, 4 s runs")
    args = parser.parse_args()
    samples, seconds = (50, 4.0) if args.quick else (args.samples, args.seconds)
    print(
        f"bench_stats {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {psutil.cpu_count()} cores; default interval "
        f"{DEFAULT_INTERVAL:g} s\n"
    )
    per_sample = in_process(samples)
    with tempfile.TemporaryDirectory() as tmp:
        on_cpu, on_events = idle_run(Path(tmp), "on", LIVE_INTERVAL, seconds)
        off_cpu, _ = idle_run(Path(tmp), "off", 0.0, seconds)
    in_window = seconds / LIVE_INTERVAL  # the thread wakes every interval while CPU was measured
    live_per_sample = max(0.0, on_cpu - off_cpu) / in_window
    rows = [
        ("sample() alone", per_sample),
        (f"in a run ({in_window:.0f} samples in {seconds:g} s)", live_per_sample),
    ]
    header = f"{'measure':<36} {'ms CPU / sample':>16} {'% core @ 5 s':>13} {'target':>8} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for name, cost in rows:
        share = 100.0 * cost / DEFAULT_INTERVAL
        ratio = TARGET / share if share > 0 else float("inf")
        print(f"{name:<36} {cost * 1000:>16.2f} {share:>12.3f}% {'< 1%':>8} {ratio:>6.0f}x")
    print(
        f"\ninternal process CPU over {seconds:g} s idle: {on_cpu:.3f} s sampling, {off_cpu:.3f} s not; "
        f"{on_events} samples stored over the whole run"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The cost of a script's console capture: print() per line with and without it, and a flood.

    python benchmarks/bench_console.py [--lines 100000] [--flood 1000000] [--repeats 5] [--quick]

Every measurement is a fresh `python` child (imports, caches and RSS start clean) that prints
`print("step", i, "loss", 0.25)` per line, the loop timed inside the child, in three setups side by
side: no run at all, a local run with console=False, and a local run with capture on (the
default). Its stdout is either a file (block-buffered: print() is cheapest, so capture's share is
largest) or a terminal (a pty whose other end this script drains, as a terminal emulator does:
line-buffered, one write per line). The table gives the median of --repeats children and the
ratio capture on / console off. The flood row prints --flood lines in one go: the loop, the
finish() that follows (every line stored), the lines the store holds, the lines not kept, and
the child's peak RSS growth during loop and finish.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pty
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import nbtrack  # noqa: E402

SETUPS = ("none", "off", "on")  # no run; a run with console=False; a run with capture on
HEADERS = {"none": "no run", "off": "console off", "on": "capture on"}

CHILD = r"""
import json, os, resource, sys, time
setup, lines, root, result_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
run = None
if setup != "none":
    import nbtrack
    run = nbtrack.init(project="bench", dir=root, console=setup == "on")
for i in range(1000):  # warm-up: the first prints pay for page faults and caches
    print("warm", i)
with open("/proc/self/clear_refs", "w") as f:  # reset the RSS high-water mark
    f.write("5")
def rss_kb(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field))
before = rss_kb("VmRSS:")
started = time.perf_counter()
for i in range(lines):
    print("step", i, "loss", 0.25)
loop = time.perf_counter() - started
started = time.perf_counter()
if run is not None:
    run.finish()
finish = time.perf_counter() - started
notices = run.notices if run is not None else []
dropped = sum(int(n.split()[0].replace(",", "")) for n in notices if "console lines were not kept" in n)
with open(result_path, "w") as f:
    json.dump({"loop": loop, "finish": finish, "growth_mb": (rss_kb("VmHWM:") - before) / 1024,
               "run": run.id if run is not None else None, "dropped": dropped}, f)
"""


def child(setup: str, lines: int, terminal: bool, work: Path) -> dict[str, Any]:
    """Run one child; its stdout a file or a pty; returns what it measured."""
    root, result = work / "root", work / f"result-{setup}.json"
    args = [sys.executable, "-c", CHILD, setup, str(lines), str(root), str(result)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("NBTRACK_CONSOLE", None)
    if not terminal:
        with open(work / "stdout.txt", "wb") as out:
            subprocess.run(args, stdout=out, env=env, check=True, timeout=1800)
    else:
        master, slave = pty.openpty()
        drained = threading.Thread(target=_drain, args=(master,), daemon=True)
        drained.start()
        try:
            subprocess.run(args, stdout=slave, env=env, check=True, timeout=1800)
        finally:
            os.close(slave)  # the drain ends at EIO once the child's end is closed too
            drained.join(10)
            os.close(master)
    measured: dict[str, Any] = json.loads(result.read_text())
    if measured["run"] is not None:
        (stored,) = [r for r in nbtrack.Api(dir=str(root)).runs("bench") if r.id == measured["run"]]
        measured["stored"] = sum(1 for line in stored.output() if line["line"].startswith("step "))
    return measured


def _drain(fd: int) -> None:
    """Read the pty as a terminal emulator would, as fast as it comes."""
    try:
        while os.read(fd, 65536):
            pass
    except OSError:  # EIO: the other end is closed
        pass


def per_line(lines: int, repeats: int, terminal: bool) -> dict[str, float]:
    """Median µs per print() line of each setup, the setups interleaved in every repeat."""
    samples: dict[str, list[float]] = {setup: [] for setup in SETUPS}
    for _ in range(repeats):
        for setup in SETUPS:
            with tempfile.TemporaryDirectory() as work:
                measured = child(setup, lines, terminal, Path(work))
            samples[setup].append(measured["loop"] / lines * 1e6)
    return {setup: statistics.median(values) for setup, values in samples.items()}


def flood(lines: int, repeats: int) -> dict[str, dict[str, float]]:
    """The median of each figure of a flood, capture on and console off (stdout a file)."""
    samples: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for _ in range(repeats):
        for setup in samples:
            with tempfile.TemporaryDirectory() as work:
                samples[setup].append(child(setup, lines, False, Path(work)))
    keys = ("loop", "finish", "growth_mb", "stored", "dropped")
    return {
        setup: {key: statistics.median(float(m[key]) for m in runs) for key in keys}
        for setup, runs in samples.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="print() lines per child")
    parser.add_argument("--flood", type=int, default=1_000_000, help="lines of the flood")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 lines, a 20,000-line flood")
    args = parser.parse_args()
    lines, flood_lines, repeats = (5_000, 20_000, 1) if args.quick else (args.lines, args.flood, args.repeats)
    flood_repeats = 1 if args.quick else 3

    print(f"nbtrack console capture: Python {platform.python_version()}, {os.cpu_count()} cores")
    print(
        f"{lines:,} lines per child, median of {repeats}; "
        f"flood {flood_lines:,} lines, median of {flood_repeats}"
    )
    print()
    width = 34
    print(
        f"{'print() per line, µs':<{width}}"
        + "".join(f"{HEADERS[s]:>14}" for s in SETUPS)
        + f"{'on / off':>11}"
    )
    for label, terminal in (("stdout a file", False), ("stdout a terminal (pty)", True)):
        medians = per_line(lines, repeats, terminal)
        cells = "".join(f"{medians[s]:>14.2f}" for s in SETUPS)
        print(f"{label:<{width}}{cells}{medians['on'] / medians['off']:>10.2f}x")
    print()
    figures = flood(flood_lines, flood_repeats)
    print(
        f"{'flood of ' + format(flood_lines, ',') + ' lines':<{width}}{'console off':>14}{'capture on':>14}"
    )
    rows = (
        ("loop, s", "loop", "{:.2f}"),
        ("finish() after it, s", "finish", "{:.2f}"),
        ("lines stored", "stored", "{:,.0f}"),
        ("lines not kept (said)", "dropped", "{:,.0f}"),
        ("user process peak growth, MB", "growth_mb", "{:.1f}"),
    )
    for label, key, fmt in rows:
        off, on = fmt.format(figures["off"][key]), fmt.format(figures["on"][key])
        print(f"{label:<{width}}{off:>14}{on:>14}")
    kept = figures["on"]["stored"] + figures["on"]["dropped"] == flood_lines
    print(f"every flood line stored or counted: {'yes' if kept else 'NO'}")
    return 0 if kept else 1


if __name__ == "__main__":
    sys.exit(main())

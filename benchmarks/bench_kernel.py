"""nbtrack inside a real Jupyter kernel: init() with the extension loaded, and the live panel's traffic.

    python benchmarks/bench_kernel.py [--repeats 5] [--rows 100000]

Prints one table: init() inside the kernel with a warm spare (median of the repeats; target
<= 50 ms), init() without the extension (a cold internal process, for comparison), and during
a loop of --rows log() calls: the panel's update rate (target 2-10 per second while values
change) and the largest and median update message (target: bounded, whatever the run's length).
Then what the notebook features cost: log() per call inside a cell with the extension (rows carry
their cell), and print() per line with console capture on and a run live, against a kernel
without the extension (median of --repeats loops of PRINTS lines each).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
from typing import Any

import jupyter_client

SPARE_WARMUP = 3.0  # seconds for a warm spare to start and import everything
PRINTS = 20_000  # lines per timed print() loop


class Kernel:
    def __init__(self, cwd: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NBTRACK_")}
        env["NBTRACK_DIR"] = os.path.join(cwd, ".nbtrack")
        self.manager = jupyter_client.KernelManager(kernel_name="python3")
        self.manager.start_kernel(cwd=cwd, env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def execute(self, code: str, timeout: float = 600) -> tuple[str, list[dict[str, Any]]]:
        """Run code; return its stdout and the iopub messages it caused, stamped with arrival times."""
        msg_id = self.client.execute(code)
        messages: list[dict[str, Any]] = []
        stdout = []
        while True:
            message = self.client.get_iopub_msg(timeout=timeout)
            message["received"] = time.monotonic()
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
            if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
                stdout.append(message["content"]["text"])
            if message["msg_type"] == "error":
                raise RuntimeError("\n".join(message["content"]["traceback"]))
            messages.append(message)
        self.client.get_shell_msg(timeout=timeout)
        return "".join(stdout), messages

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


TIMED_INIT = (
    "import time as _t\n_s = _t.perf_counter()\nrun = nbtrack.init(project='bench')\n"
    "print((_t.perf_counter() - _s) * 1000)\nrun.finish()\n"
)


def init_times(kernel: Kernel, repeats: int, extension: bool) -> list[float]:
    kernel.execute("%load_ext nbtrack" if extension else "import nbtrack")
    times = []
    for _ in range(repeats):
        if extension:
            time.sleep(SPARE_WARMUP)  # the previous init took the spare; a new one is warming up
        out, _ = kernel.execute(TIMED_INIT)
        times.append(float(out.strip().splitlines()[-1]))
    return times


def panel_traffic(kernel: Kernel, rows: int) -> dict[str, float]:
    time.sleep(SPARE_WARMUP)
    code = (
        "import time as _t\nrun = nbtrack.init(project='bench')\n_s = _t.perf_counter()\n"
        f"for i in range({rows}):\n    run.log({{'loss': 1 / (i + 1), 'acc': i / {rows}}})\n"
        f"print((_t.perf_counter() - _s) / {rows} * 1e6)\n"
    )
    started = time.monotonic()
    out, messages = kernel.execute(code)
    _, finish_messages = kernel.execute("run.finish()")
    ended = time.monotonic()
    updates = [
        m
        for m in messages + finish_messages
        if m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "update"
    ]
    sizes = [len(json.dumps(m["content"]["data"])) for m in updates]
    sent = [m["header"]["date"] for m in updates]  # the kernel's own send times
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(sent)]
    return {
        "log_us": float(out.strip().splitlines()[-1]),
        "seconds": ended - started,
        "updates": len(updates),
        "rate": len(updates) / (ended - started),
        "max_gap": max(gaps) if gaps else float("nan"),
        "min_gap": min(gaps) if gaps else float("nan"),
        "max_bytes": max(sizes) if sizes else 0,
        "median_bytes": statistics.median(sizes) if sizes else 0,
    }


def print_times(kernel: Kernel, repeats: int) -> list[float]:
    """µs per print() of a short line, timed inside the cell (the kernel's own cost included)."""
    code = (
        "import time as _t\n_s = _t.perf_counter()\n"
        f"for _i in range({PRINTS}):\n    print('step', _i, 'loss', 0.5)\n"
        f"_e = (_t.perf_counter() - _s) / {PRINTS} * 1e6\nprint('T', _e)\n"
    )
    times = []
    for _ in range(repeats):
        out, _ = kernel.execute(code)
        times.append(float(out.strip().splitlines()[-1].split()[1]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cwd:
        kernel = Kernel(cwd)
        try:
            warm = init_times(kernel, args.repeats, extension=True)
            traffic = panel_traffic(kernel, args.rows)
            kernel.execute("run = nbtrack.init(project='bench')")  # a live run: every line is captured
            captured = print_times(kernel, args.repeats)
            kernel.execute("run.finish()")
        finally:
            kernel.close()
        kernel = Kernel(cwd)
        try:
            cold = init_times(kernel, args.repeats, extension=False)
            plain = print_times(kernel, args.repeats)
        finally:
            kernel.close()
    rows = [
        ("init() in a kernel, extension loaded (warm spare), ms", statistics.median(warm), "<= 50"),
        ("init() in a kernel, no extension (cold process), ms", statistics.median(cold), ""),
        (f"panel updates per second during {args.rows:,} log() calls + finish", traffic["rate"], "2..10"),
        ("largest gap between updates, s", traffic["max_gap"], ""),
        ("smallest gap between updates, s", traffic["min_gap"], ">= 0.1"),
        ("largest update message, bytes", traffic["max_bytes"], "bounded"),
        ("median update message, bytes", traffic["median_bytes"], ""),
        ("log() per call in a cell, extension loaded, us", traffic["log_us"], "<= 5"),
        ("print() per line, console captured to a live run, us", statistics.median(captured), ""),
        ("print() per line, no extension, us", statistics.median(plain), ""),
        (
            "console capture cost (ratio captured / plain)",
            statistics.median(captured) / statistics.median(plain),
            "",
        ),
    ]
    print(f"{'metric':<62} | {'value':>10} | target")
    print("-" * 62 + "-+-" + "-" * 10 + "-+-------")
    for name, value, target in rows:
        print(f"{name:<62} | {value:>10.3g} | {target}")
    print(f"\n(init medians of {args.repeats}; {traffic['updates']} updates in {traffic['seconds']:.1f} s)")


if __name__ == "__main__":
    main()

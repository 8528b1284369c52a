"""End to end through a real tracking server: log() -> internal process -> HTTP -> rows committed.

    python benchmarks/bench_online.py [--rows 100000] [--repeats 3] [--quick]

Starts `nbtrack server` (SQLite, a temporary folder) on a free loopback port and measures, side by
side in one run (medians of the repeats):
  - local: the embedded store, no server (the reference column);
  - online: the same loop streamed to the server;
  - online, server down: the server is stopped for the whole loop and started again before
    finish(), so the loop runs against an unreachable server and finish() delivers the backlog.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

COLUMNS = ("local", "online", "online, server down")
ROWS = [
    ("log_us", "log() per call, loop only (µs)"),
    ("finish_ms", "finish() straight after the loop (ms)"),
    ("e2e_krps", "end to end: N / (loop + finish) (k rows/s)"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A real `nbtrack server` subprocess that can be stopped and started on the same port."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "nbtrack.cli",
            "server",
            "--port",
            str(self.port),
            "--dir",
            str(self.root),
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nbtrack server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None


def one_run(column: str, rows: int, server: Server, root: Path) -> dict[str, float]:
    import nbtrack

    data = [{f"m{k}": (i * 7 + k) / 13.0 for k in range(10)} for i in range(rows)]
    if column == "local":
        run = nbtrack.init(project="bench", dir=root)
    else:
        run = nbtrack.init(project="bench", dir=root, base_url=server.url)
    if column == "online, server down":
        server.stop()
    started = time.perf_counter()
    for row in data:
        run.log(row)
    loop = time.perf_counter() - started
    if column == "online, server down":
        server.start()
    finish_started = time.perf_counter()
    run.finish(timeout=600)
    finish = time.perf_counter() - finish_started
    if run.state != "finished":
        raise RuntimeError(f"{column}: the run ended {run.state}")
    return {"log_us": loop / rows * 1e6, "finish_ms": finish * 1e3, "e2e_krps": rows / (loop + finish) / 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 1 repeat")
    args = parser.parse_args()
    rows, repeats = (10_000, 1) if args.quick else (args.rows, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        server = Server(Path(tmp) / "served")
        server.start()
        try:
            results: dict[str, list[dict[str, float]]] = {column: [] for column in COLUMNS}
            for _ in range(repeats):
                for column in COLUMNS:
                    results[column].append(one_run(column, rows, server, Path(tmp) / "client"))
        finally:
            server.stop()
    print(f"nbtrack online: {rows:,} rows of 10 floats, median of {repeats}")
    print(table(results))


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    head = ["metric", *COLUMNS]
    lines = [head]
    for key, label in ROWS:
        reference = statistics.median(r[key] for r in results["local"])
        cells = [label]
        for column in COLUMNS:
            value = statistics.median(r[key] for r in results[column])
            ratio = "" if column == "local" else f" ({value / reference:.2f}x)"
            cells.append(f"{value:,.1f}{ratio}")
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(out)


if __name__ == "__main__":
    main()

"""wandb's public API against `nbtrack server`, beside nbtrack's own API on the same runs: cost per query.

    python benchmarks/bench_wandb_api.py [--runs 100] [--history-rows 20000] [--repeats 5] [--quick]

One server (SQLite, and PostgreSQL too when NBTRACK_TEST_POSTGRES_URL is set, in a schema of its
own, dropped afterwards) holds a project of --runs runs with a config and a summary; one of them
has --history-rows history rows (benchmarks/workload.py's metrics). The same reads are then made
with the real wandb client (0.31.0, in its own venv: NBTRACK_TEST_WANDB_PYTHON, else
.venv-wandb/bin/python; each timed inside that process, after a warm-up call) and with
nbtrack.Api against the same server:

    runs           wandb: list(api.runs(path))              nbtrack: Api.runs(path)
    run            wandb: api.run(path)                     nbtrack: Api.run(path)
    history(500)   wandb: run.history(pandas=False)         nbtrack: run.history() of a 500-row run
    full history   wandb: list(run.scan_history(use_cache=False))   nbtrack: run.history()

Each figure is the median of --repeats, in milliseconds per call; the ratio is wandb's over
nbtrack's. The target (issue 13) is that wandb's public-API queries cost no more than twice
nbtrack's own equivalents: ratio <= 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.serving starts the server
import nbtrack
from benchmarks.bench_server import postgres_schema
from benchmarks.workload import history_bodies
from tests.capture_proxy import CaptureProxy, Record
from tests.serving import Client, create_key, start_server

REPO = Path(__file__).resolve().parent.parent

PROJECT = "bench"
SHORT_ROWS = 500  # wandb's run.history() samples 500 rows: a run that has them all
TARGET_RATIO = 2.0
QUERIES = ("runs", "run", f"history({SHORT_ROWS})", "full history")

WANDB_SIDE = """
import json, os, statistics, time, urllib.parse, urllib.request
import wandb
base, entity = os.environ["B_URL"], os.environ["B_ENTITY"]
runs, repeats = int(os.environ["B_RUNS"]), int(os.environ["B_REPEATS"])
api = wandb.Api(overrides={"base_url": base}, timeout=120)
path = f"{entity}/bench"

def mark(phase):
    urllib.request.urlopen(f"{base}/healthz?phase={urllib.parse.quote(phase)}").read()

def timed(name, call, wanted):
    api.flush()  # the Api keeps runs it has read: each call asks the server again
    mark(name)
    got = call()  # warm-up, the requests replayed, and the answer is the one expected
    mark("end")
    if got != wanted:
        raise SystemExit(f"{name}: got {got!r:.200}, wanted {wanted!r:.200}")
    spent = []
    for _ in range(repeats):
        api.flush()
        started = time.perf_counter()
        call()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent) if spent else 0.0

out = {
    "runs": timed("runs", lambda: len(list(api.runs(path, per_page=50))), runs),
    "run": timed("run", lambda: api.run(path + "/long").id, "long"),
    "history(%(short)d)": timed(
        "history(%(short)d)", lambda: len(api.run(path + "/short").history(pandas=False)), %(short)d),
    "full history": timed(
        "full history",
        lambda: len(list(api.run(path + "/long").scan_history(use_cache=False))),
        int(os.environ["B_ROWS"])),
}
print(json.dumps(out))
"""


def wandb_python() -> Path | None:
    found = Path(os.environ.get("NBTRACK_TEST_WANDB_PYTHON") or REPO / ".venv-wandb" / "bin" / "python")
    return found if found.exists() else None


def populate(client: Client, runs: int, history_rows: int) -> None:
    """--runs runs in the project, "long" with history_rows rows and "short" with SHORT_ROWS."""
    for i in range(runs - 2):
        client.upsert(PROJECT, f"r{i:04d}", config=json.dumps({"lr": {"value": i / 1000}}))
    for run, rows in (("long", history_rows), ("short", SHORT_ROWS)):
        client.upsert(PROJECT, run, config='{"lr": {"value": 0.1}}')
        for body in history_bodies(rows):
            client.stream(PROJECT, run, body).raise_for_status()


def mark(url: str, phase: str) -> None:
    requests.get(f"{url}/healthz", params={"phase": phase}, timeout=30).raise_for_status()


def median_seconds(
    url: str, name: str, call: Callable[[], Any], check: Callable[[Any], bool], repeats: int
) -> float:
    mark(url, name)
    answer = call()  # warm-up, the requests replayed, and the answer is the one expected
    mark(url, "end")
    if not check(answer):
        raise RuntimeError(f"nbtrack's answer to {name} is not the one expected")
    spent = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent) if spent else 0.0


def measure_nbtrack(url: str, client: Client, runs: int, history_rows: int, repeats: int) -> dict[str, float]:
    api = nbtrack.Api(base_url=url, api_key=client.key)
    path = f"{client.entity}/{PROJECT}"
    try:
        return {
            "runs": median_seconds(url, "runs", lambda: len(api.runs(path)), lambda n: n == runs, repeats),
            "run": median_seconds(
                url, "run", lambda: api.run(f"{path}/long").id, lambda i: i == "long", repeats
            ),
            f"history({SHORT_ROWS})": median_seconds(
                url,
                f"history({SHORT_ROWS})",
                lambda: len(api.run(f"{path}/short").history()),
                lambda n: n == SHORT_ROWS,
                repeats,
            ),
            "full history": median_seconds(
                url,
                "full history",
                lambda: len(api.run(f"{path}/long").history()),
                lambda n: n == history_rows,
                repeats,
            ),
        }
    finally:
        api.close()


def measure_wandb(
    python: Path, url: str, client: Client, runs: int, history_rows: int, repeats: int
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "NBTRACK_"))}
        env.update(
            HOME=home,
            WANDB_API_KEY=client.key or "",
            WANDB_CACHE_DIR=f"{home}/cache",
            WANDB_CONFIG_DIR=f"{home}/config",
            WANDB_DATA_DIR=f"{home}/data",
            WANDB_SILENT="true",
            WANDB_ERROR_REPORTING="false",
            NO_PROXY="127.0.0.1,localhost",
            B_URL=url,
            B_ENTITY=client.entity,
            B_RUNS=str(runs),
            B_ROWS=str(history_rows),
            B_REPEATS=str(repeats),
        )
        script = textwrap.dedent(WANDB_SIDE) % {"short": SHORT_ROWS}
        done = subprocess.run(
            [str(python), "-c", script], env=env, cwd=home, capture_output=True, text=True, timeout=1200
        )
    if done.returncode != 0:
        raise RuntimeError(f"the wandb side failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


Figures = dict[str, tuple[float, float | None]]  # query: (nbtrack's, wandb's or None) seconds


def phases(records: list[Record]) -> dict[str, list[Record]]:
    """The requests each client made for one call of each query (between its marks)."""
    found: dict[str, list[Record]] = {}
    current: list[Record] | None = None
    for record in records:
        if record.path == "/healthz":
            phase = record.target.partition("phase=")[2]
            current = None if phase == "end" else found.setdefault(unquote_plus(phase), [])
        elif current is not None:
            current.append(record)
    return found


def replay(session: requests.Session, url: str, requests_made: list[Record], repeats: int) -> float:
    """The server's time for one call's requests (the median of repeats), sent again as they were."""
    spent = []
    for _ in range(repeats):
        started = time.perf_counter()
        for record in requests_made:
            headers = {"Content-Type": "application/json"} if record.raw else {}
            answer = session.request(record.method, url + record.target, data=record.raw, headers=headers)
            if answer.status_code != 200:
                raise RuntimeError(f"replaying {record.method} {record.path}: {answer.status_code}")
        spent.append(time.perf_counter() - started)
    return statistics.median(spent)


def run_backend(
    name: str, tmp: Path, db_url: str | None, args: argparse.Namespace, python: Path | None
) -> tuple[Figures, Figures]:
    """(each client's time per call, the server's time per call's requests)."""
    server = start_server(tmp / name, db_url=db_url)
    try:
        entity = f"bench{uuid.uuid4().hex[:6]}"
        client = Client(server.url, entity, create_key(server, entity))
        populate(client, args.runs, args.history_rows)
        # Each client twice: once through a capturing proxy, for one call's requests (no repeats),
        # then straight at the server, timed.
        rows, repeats = args.history_rows, args.repeats
        with CaptureProxy(server.url) as proxy:
            measure_nbtrack(proxy.url, client, args.runs, rows, 0)
            our_requests = phases(proxy.records)
        ours = measure_nbtrack(server.url, client, args.runs, rows, repeats)
        theirs: dict[str, float] = {}
        their_requests: dict[str, list[Record]] = {}
        if python is not None:
            with CaptureProxy(server.url) as proxy:
                measure_wandb(python, proxy.url, client, args.runs, rows, 0)
                their_requests = phases(proxy.records)
            theirs = measure_wandb(python, server.url, client, args.runs, rows, repeats)
        session = requests.Session()
        session.auth = ("api", client.key or "")
        calls = {query: (ours[query], theirs.get(query)) for query in QUERIES}
        served = {
            query: (
                replay(session, server.url, our_requests[query], args.repeats),
                replay(session, server.url, their_requests[query], args.repeats)
                if query in their_requests
                else None,
            )
            for query in QUERIES
        }
        return calls, served
    finally:
        server.stop()


def print_table(results: dict[str, tuple[Figures, Figures]], args: argparse.Namespace) -> None:
    print(
        f"\n{args.runs} runs; full history: {args.history_rows:,} rows; median of {args.repeats}, "
        f"ms per call; target: wandb <= {TARGET_RATIO:g}x nbtrack\n"
        "client: the call in each client's process; server: that call's requests sent again\n"
    )
    header = (
        f"{'store':<11} {'query':<14} {'client nbtrack':>14} {'wandb':>8} {'ratio':>7}"
        f"  {'server nbtrack':>14} {'wandb':>8} {'ratio':>7}  {'target':>6}"
    )
    print(header)
    print("-" * len(header))
    for backend, (calls, served) in results.items():
        for query in QUERIES:
            cells = []
            for ours, theirs in (calls[query], served[query]):
                shown = "-" if theirs is None else f"{theirs * 1000:.1f}"
                ratio = "-" if theirs is None else f"{theirs / ours:.2f}x"
                cells.append((f"{ours * 1000:.1f}", shown, ratio))
            their_server = served[query][1]
            verdict = "" if their_server is None else "ok" if their_server / served[query][0] <= 2 else "over"
            (c1, c2, c3), (s1, s2, s3) = cells
            print(
                f"{backend:<11} {query:<14} {c1:>14} {c2:>8} {c3:>7}  {s1:>14} {s2:>8} {s3:>7}  {verdict:>6}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="runs in the project (100)")
    parser.add_argument("--history-rows", type=int, default=20_000, help="rows of the long run (20,000)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per figure (median shown)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 runs, 2,000 rows, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.history_rows, args.repeats = 20, 2_000, 1
    print(
        f"bench_wandb_api {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        flush=True,
    )
    python = wandb_python()
    results: dict[str, tuple[Figures, Figures]] = {}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        results["sqlite"] = run_backend("sqlite", tmp, None, args, python)
        postgres = os.environ.get("NBTRACK_TEST_POSTGRES_URL")
        if postgres:
            with postgres_schema(postgres) as url:
                results["postgresql"] = run_backend("postgresql", tmp, url, args, python)
    print_table(results, args)
    if python is None:
        print("\nwandb skipped: no wandb venv (set NBTRACK_TEST_WANDB_PYTHON, or run .ci/run)")
    if not postgres:
        print("\nPostgreSQL skipped: set NBTRACK_TEST_POSTGRES_URL to measure it too")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except requests.RequestException as exc:
        print(f"bench_wandb_api: the server failed: {exc}", file=sys.stderr)
        sys.exit(1)

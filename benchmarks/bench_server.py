"""The tracking server's two hot paths, against a real `nbtrack server` process on this machine.

    python benchmarks/bench_server.py [--rows 200000] [--history-rows 1000000] [--repeats 3] [--quick]

1. Ingest: history rows/s through POST /files/.../file_stream, posts of 10,000 rows (bodies built
   before the clock starts; each post is timed from send to answer, so the client's JSON encoding
   is not counted). The store is SQLite, and PostgreSQL too when NBTRACK_TEST_POSTGRES_URL is
   set (in a schema of its own, dropped afterwards).
2. History: the GraphQL query of a run of --history-rows rows: the full history (one JSON string,
   built from the stored texts without parsing them) and history(samples: 1000).
3. Chart: the run page's query of the same run, Run.chart over all its metric keys (1,000 points
   each, min/max per bucket): the full range, and a zoom on 10% of it (not aligned to buckets).
Each figure is the median of --repeats. The targets come from the server's design brief (ingest)
or are set here (history); ratio > 1 means better than the target.
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
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.serving starts the server
from benchmarks.workload import METRIC_KEYS, POST_ROWS, history_bodies
from tests.serving import Client, create_key, start_server

SAMPLES = 1000
CHART_FULL, CHART_ZOOM = f"chart ({len(METRIC_KEYS)} keys)", "chart (zoom 10%)"
# (metric, unit, target, higher is better)
TARGETS = {
    "ingest": ("k rows/s", 50.0, True),
    "full history": ("s", 3.0, False),
    f"history(samples: {SAMPLES})": ("s", 0.5, False),
    # The run page of a million-row run must be interactive within 1 s: half of it for the server.
    CHART_FULL: ("s", 0.5, False),
    CHART_ZOOM: ("s", 0.5, False),
}


def ingest(client: Client, project: str, run: str, bodies: list[bytes]) -> float:
    """Seconds spent in the posts of bodies to a new run."""
    client.upsert(project, run)
    spent = 0.0
    for body in bodies:
        started = time.perf_counter()
        response = client.stream(project, run, body)
        spent += time.perf_counter() - started
        response.raise_for_status()
    return spent


def timed_query(client: Client, query: str, **variables: str | float) -> float:
    started = time.perf_counter()
    response = client.graphql(query, **variables)
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or "errors" in response.json():
        raise RuntimeError(f"the history query failed: {response.text[:300]}")
    return elapsed


def measure(client: Client, rows: int, history_rows: int, repeats: int) -> dict[str, float]:
    project = f"bench-{uuid.uuid4().hex[:8]}"
    bodies = list(history_bodies(rows))
    ingest_seconds = [ingest(client, project, f"ingest{i}", bodies) for i in range(repeats)]
    results = {"ingest": rows / statistics.median(ingest_seconds) / 1000}
    ingest(client, project, "history", list(history_bodies(history_rows)))
    query = 'query ($p: String!) { project(name: $p) { run(name: "history") { %s } } }'
    for metric, field in [
        ("full history", "history"),
        (f"history(samples: {SAMPLES})", f"history(samples: {SAMPLES})"),
    ]:
        results[metric] = statistics.median(
            timed_query(client, query % field, p=project) for _ in range(repeats)
        )
    check_chart(client, project)
    chart = """query ($p: String!, $minX: Float, $maxX: Float) {
        project(name: $p) { run(name: "history") { chart(minX: $minX, maxX: $maxX) } } }"""
    # The zoom starts mid-bucket, so its ends are read as lines, as a user's drag would have it.
    low = history_rows * 0.45 + 37
    for metric, bounds in [(CHART_FULL, {}), (CHART_ZOOM, {"minX": low, "maxX": low + history_rows / 10})]:
        results[metric] = statistics.median(
            timed_query(client, chart, p=project, **bounds) for _ in range(repeats)
        )
    return results


def check_chart(client: Client, project: str) -> None:
    """The chart being timed is the one the run page draws: every key, at most 1,000 points each."""
    query = 'query ($p: String!) { project(name: $p) { run(name: "history") { chart } } }'
    chart = json.loads(client.data(query, p=project)["project"]["run"]["chart"])
    if sorted(chart["series"]) != sorted(METRIC_KEYS) or not all(
        0 < len(points) <= 1000 for points in chart["series"].values()
    ):
        raise RuntimeError(f"unexpected chart: keys {sorted(chart['series'])}")


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """url, pointed at a schema made for this run and dropped after it: the test database stays clean."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def run_backend(
    name: str, tmp: Path, db_url: str | None, measure_with: Callable[[Client], dict[str, float]]
) -> dict[str, float]:
    server = start_server(tmp / name, db_url=db_url)
    try:
        # With PostgreSQL, act as an entity with a key: a database shared with tests may hold keys.
        client = Client(server.url, "bench", create_key(server, "bench")) if db_url else Client(server.url)
        return measure_with(client)
    finally:
        server.stop()


def print_table(results: dict[str, dict[str, float]], rows: int, history_rows: int) -> None:
    print(f"\ningest: {rows:,} rows in posts of {POST_ROWS:,}; history and chart: {history_rows:,} rows\n")
    header = f"{'store':<12} {'metric':<26} {'value':>12}  {'target':>12}  {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for backend, figures in results.items():
        for metric, value in figures.items():
            unit, target, higher = TARGETS[metric]
            ratio = value / target if higher else target / value
            shown = f"{value:,.1f} {unit}" if unit.startswith("k") else f"{value:.3f} {unit}"
            goal = f"{'>=' if higher else '<='} {target:g} {unit}"
            print(f"{backend:<12} {metric:<26} {shown:>12}  {goal:>12}  {ratio:>5.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows per ingest measurement (200,000)")
    parser.add_argument(
        "--history-rows", type=int, default=1_000_000, help="rows of the queried run (1,000,000)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats per figure (median shown)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000 and 50,000 rows, 1 repeat")
    args = parser.parse_args()
    rows, history_rows, repeats = (
        (20_000, 50_000, 1) if args.quick else (args.rows, args.history_rows, args.repeats)
    )
    print(
        f"bench_server {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        flush=True,
    )

    def measure_with(client: Client) -> dict[str, float]:
        return measure(client, rows, history_rows, repeats)

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        results["sqlite"] = run_backend("sqlite", tmp, None, measure_with)
        postgres = os.environ.get("NBTRACK_TEST_POSTGRES_URL")
        if postgres:
            with postgres_schema(postgres) as url:
                results["postgresql"] = run_backend("postgresql", tmp, url, measure_with)
    print_table(results, rows, history_rows)
    if not postgres:
        print("\nPostgreSQL skipped: set NBTRACK_TEST_POSTGRES_URL to measure it too")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except requests.RequestException as exc:
        print(f"bench_server: the server failed: {exc}", file=sys.stderr)
        sys.exit(1)

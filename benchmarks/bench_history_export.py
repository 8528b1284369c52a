"""The parquet export behind wandb's run.scan_history(): time and the server's peak memory.

    python benchmarks/bench_history_export.py [--rows 1000000] [--postgres] [--quick]

A server (SQLite, or NBTRACK_TEST_POSTGRES_URL with --postgres) gets a run of --rows history rows
(nine keys: _step, _runtime, _timestamp, five metrics, a text, a NaN now and then) posted through
the file stream, then one small export (so pyarrow is imported), then the run's export is
downloaded once while the server's RSS is sampled every 10 ms (psutil). Prints rows/s of the
export (written and downloaded) and the server's RSS before and at its peak.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.serving starts the server

from tests.serving import Client, create_key, start_server, unique_name

QUERY = """query Q($entity: String!, $project: String!, $runName: String!) {
    project(name: $project, entityName: $entity) { run(name: $runName) {
        parquetHistory(liveKeys: ["_step"]) { parquetUrls } } } }"""


def row(step: int) -> str:
    return json.dumps(
        {
            "_step": step,
            "_runtime": step * 0.01,
            "_timestamp": 1.7e9 + step * 0.01,
            "loss": 1 / (step + 1),
            "acc": (step % 100) / 100,
            "lr": 1e-3,
            "epoch": step // 1000,
            "phase": "train" if step % 10 else "eval",
            "x": math.nan if step % 1000 == 0 else step * 0.5,
        }
    )


def export_url(client: Client, entity: str, run: str) -> str:
    answer = client.data(QUERY, entity=entity, project="p", runName=run)
    url: str = answer["project"]["run"]["parquetHistory"]["parquetUrls"][0]
    return url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--quick", action="store_true", help="20,000 rows: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.rows = 20_000
    db_url = os.environ.get("NBTRACK_TEST_POSTGRES_URL") if args.postgres else None
    with tempfile.TemporaryDirectory() as tmp:
        served = start_server(Path(tmp), db_url=db_url)
        try:
            entity = unique_name("bench")
            client = Client(served.url, entity, create_key(served, entity))
            client.upsert("p", "big")
            start = time.monotonic()
            for offset in range(0, args.rows, 20_000):
                lines = [row(s) for s in range(offset, min(offset + 20_000, args.rows))]
                body = {"files": {"wandb-history.jsonl": {"offset": offset, "content": lines}}}
                client.stream("p", "big", body).raise_for_status()
            print(f"ingest: {args.rows} rows in {time.monotonic() - start:.1f} s")
            client.upsert("p", "small")
            client.stream(
                "p", "small", {"files": {"wandb-history.jsonl": {"offset": 0, "content": [row(0)]}}}
            )
            Client(served.url).session.get(export_url(client, entity, "small"), timeout=60).raise_for_status()
            url = export_url(client, entity, "big")
            assert served.process is not None
            process = psutil.Process(served.process.pid)
            before = process.memory_info().rss
            peak = [before]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], process.memory_info().rss)
                    time.sleep(0.01)

            sampler = threading.Thread(target=sample)
            sampler.start()
            start = time.monotonic()
            response: Any = Client(served.url).session.get(url, timeout=3600)
            seconds = time.monotonic() - start
            done.set()
            sampler.join()
            response.raise_for_status()
            print(
                f"export ({'PostgreSQL' if db_url else 'SQLite'}): {args.rows} rows in {seconds:.1f} s "
                f"= {args.rows / seconds:,.0f} rows/s, {len(response.content) >> 20} MiB of parquet; "
                f"server RSS {before >> 20} MiB before, peak {peak[0] >> 20} MiB "
                f"(+{(peak[0] - before) >> 20} MiB)"
            )
        finally:
            served.stop()


if __name__ == "__main__":
    main()

"""A project's runs page with many runs (the sweep views on), and the search of runs, against a
real `nbtrack server` and Debian's Chromium.

    python benchmarks/bench_runs_table.py [--runs 500] [--repeats 3] [--quick]

--runs finished runs, each with five config keys and four summary metrics, are written through
upsertBucket. Then:
1. Browser: navigation start to the runs page's "nbtrack-ready" mark (the table, the parallel
   coordinates and the scatter drawn), in a fresh browser context each time.
2. On one loaded page, each of these in turn, REDRAWS times, timed from the event to the redraw's
   end (synchronous: no fetch): a run's checkbox ticked (the table and both views redrawn), every
   run selected by the header's checkbox, and grouping by a config key turned on.
3. Server: Query.searchRuns for a word in every run's config (it stops at 50 hits) and for a word
   that is a config key of every run but no value (SQL cannot rule a run out: every run read).
Each figure is the median of --repeats (or of the REDRAWS). ratio > 1 means better than the target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.serving starts the server
from tests.serving import Client, start_server

PROJECT = "sweep"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TARGETS = {  # (unit, target): lower is better
    "browser: navigation to page drawn": ("s", 1.0),
    "tick one run (table + views)": ("ms", 100.0),
    "select every run": ("ms", 200.0),
    "group by a config key": ("ms", 200.0),
    "server: search, 50 hits": ("s", 0.2),
    "server: search, every run read": ("s", 0.5),
}
REDRAWS = 10
# Each action REDRAWS times on a loaded page: the milliseconds each synchronous redraw took.
ACTIONS_JS = """(redraws) => {
    const time = (act) => { const t = performance.now(); act(); return performance.now() - t; };
    const change = (node, value) => {
        if (value !== undefined) node.value = value;
        node.dispatchEvent(new Event('change'));
    };
    const tick = [], all = [], group = [];
    for (let i = 0; i < redraws; i++) {
        const box = document.querySelector('table.runs tbody tr[data-run] td.select input');
        tick.push(time(() => { box.checked = !box.checked; change(box); }));
        const head = document.querySelector('input[aria-label="Select all runs shown"]');
        all.push(time(() => { head.checked = !head.checked; change(head); }));
        const menu = document.querySelector('select[aria-label="Group runs by"]');
        group.push(time(() => change(menu, 'config:optimizer')));
        change(menu, '');
    }
    return {tick, all, group};
}"""
SEARCH = "query S($text: String!) { searchRuns(text: $text, first: 50) { name project { name } } }"


def seed(client: Client, runs: int) -> None:
    for i in range(runs):
        config = {
            "lr": {"value": [1e-4, 3e-4, 1e-3, 3e-3][i % 4]},
            "batch_size": {"value": [32, 64, 128][i % 3]},
            "optimizer": {"value": ["adam", "sgd"][i % 2]},
            "dropout": {"value": round(0.1 * (i % 5), 1)},
            "seed": {"value": i},
        }
        summary = {"loss": 1 / (i + 1), "acc": i % 97 / 97, "val_loss": 1.5 / (i + 1), "val_acc": i % 89 / 89}
        client.upsert(
            PROJECT,
            f"run{i:04d}",
            config=json.dumps(config),
            summaryMetrics=json.dumps(summary),
            state="finished",
        )


def load_page(browser: Any, url: str) -> float:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        lines = page.locator("svg.parallel path.pc-line").count()
        rows = page.locator("table.runs tbody tr[data-run]").count()
        if errors or lines != rows or rows == 0:
            raise RuntimeError(f"the runs page drew {rows} rows and {lines} lines: {errors}")
        ready: float = page.evaluate("performance.getEntriesByName('nbtrack-ready')[0].startTime")
        return ready / 1000
    finally:
        context.close()


def actions(browser: Any, url: str) -> dict[str, list[float]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        times: dict[str, list[float]] = page.evaluate(ACTIONS_JS, REDRAWS)
        return times
    finally:
        context.close()


def search_seconds(url: str, text: str, repeats: int, expected: int) -> float:
    spent: list[float] = []
    with requests.Session() as session:
        for _ in range(repeats):
            started = time.perf_counter()
            body = {"query": SEARCH, "variables": {"text": text}}
            response = session.post(f"{url}/graphql", json=body, timeout=120)
            spent.append(time.perf_counter() - started)
            found = response.json()["data"]["searchRuns"]
            if len(found) != expected:
                raise RuntimeError(f"searchRuns({text!r}) found {len(found)} runs, not {expected}")
    return statistics.median(spent)


def measure(url: str, runs: int, repeats: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    page_url = f"{url}/local/{PROJECT}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            load_page(browser, page_url)  # warms the server and the browser
            loads = [load_page(browser, page_url) for _ in range(repeats)]
            timed = actions(browser, page_url)
        finally:
            browser.close()
    return {
        "browser: navigation to page drawn": statistics.median(loads),
        "tick one run (table + views)": statistics.median(timed["tick"]),
        "select every run": statistics.median(timed["all"]),
        "group by a config key": statistics.median(timed["group"]),
        "server: search, 50 hits": search_seconds(url, "adam", repeats, min(50, (runs + 1) // 2)),
        "server: search, every run read": search_seconds(url, "batch_size", repeats, 0),
    }


def print_table(results: dict[str, float], runs: int) -> None:
    print(f"\na project of {runs:,} runs (5 config keys, 4 summary metrics)\n")
    header = f"{'metric':<36} {'value':>10}  {'target':>10}  {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for metric, value in results.items():
        unit, target = TARGETS[metric]
        print(f"{metric:<36} {value:>7.3f} {unit:<2}  {f'<= {target:g} {unit}':>10}  {target / value:>5.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="runs in the project (500)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per figure (median shown)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 60 runs, 1 repeat")
    args = parser.parse_args()
    runs, repeats = (60, 1) if args.quick else (args.runs, args.repeats)
    if not Path(CHROMIUM).exists():
        print("bench_runs_table: Debian's chromium is not installed", file=sys.stderr)
        return 1
    print(
        f"bench_runs_table {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder))
        try:
            started = time.perf_counter()
            seed(Client(server.url), runs)
            print(f"seeded {runs:,} runs in {time.perf_counter() - started:.1f} s", flush=True)
            results = measure(server.url, runs, repeats)
        finally:
            server.stop()
    print_table(results, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

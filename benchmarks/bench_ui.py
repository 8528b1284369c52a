"""The web UI's run page on a big run, against a real `nbtrack server` and Debian's Chromium.

    python benchmarks/bench_ui.py [--rows 1000000] [--repeats 3] [--quick]

A run of --rows history rows (_step, _runtime, _timestamp and five metrics) is posted through the
file stream in posts of 10,000 rows, as bench_server.py does, with 1,000 console lines. Then:
1. Server: the GraphQL requests the run page sends while loading, captured from a real page load
   and replayed with requests (their bodies byte for byte), timed from send to answer, summed.
2. Browser: navigation start to the page's "nbtrack-ready" mark (every chart drawn), in a fresh
   browser context each time (no cached modules), read from the page's performance timeline; once
   with the project's charts as they start (no smoothing, linear), once with smoothing on (0.6,
   set in the project's kept chart settings before the page loads: ui/chart_settings.js), where
   every chart also draws its smoothed line over the raw one.
3. Redraw: on one loaded page, every chart redrawn by moving the smoothing slider, alternately to
   0 (off) and to 0.6, REDRAWS times each; the median time of each, from the input event to the
   last chart drawn (synchronous: the slider redraws what is loaded, without a fetch). The cost of
   smoothing itself, side by side with a redraw without it, whatever else the machine is doing.
Each figure is the median of --repeats. ratio > 1 means better than the target.
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
from benchmarks.workload import METRIC_KEYS, history_bodies
from tests.serving import Client, start_server

PROJECT = "bench"
RUN = "big"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# (unit, target in seconds): lower is better for both.
TARGETS = {
    "server: run page queries": ("s", 0.5),
    "browser: navigation to charts drawn": ("s", 1.0),
    "browser: charts drawn, smoothing on": ("s", 1.0),
    "redraw every chart, smoothing off": ("ms", 50.0),
    "redraw every chart, smoothing 0.6": ("ms", 50.0),
}
REDRAWS = 20
# Moves the smoothing slider to each weight in turn; the milliseconds each redraw took.
REDRAW_JS = """(weights) => {
    const slider = document.querySelector('input.smoothing');
    return weights.map((w) => {
        const started = performance.now();
        slider.value = String(w);
        slider.dispatchEvent(new Event('input'));
        return performance.now() - started;
    });
}"""
SMOOTHING = 0.6
# ui/chart_settings.js's key for the project's chart settings (settingsKey("local", PROJECT)).
SETTINGS_KEY = "nbtrack.charts:" + json.dumps(["local", PROJECT], separators=(",", ":"))


def seed(client: Client, rows: int) -> None:
    config = json.dumps({"lr": {"value": 3e-4}, "batch_size": {"value": 64}, "optimizer": {"value": "adam"}})
    client.upsert(PROJECT, RUN, config=config, displayName="a million rows")
    for body in history_bodies(rows):
        client.stream(PROJECT, RUN, body).raise_for_status()
    lines = [f"step {i * 1000}: loss {1 / (1 + i):.4f}" for i in range(1000)]
    client.stream(PROJECT, RUN, {"files": {"output.log": {"offset": 0, "content": lines}}}).raise_for_status()
    summary = json.dumps({"loss": 0.5, "acc": 1.0, "lr": 0.0, "grad_norm": 0.5})
    client.upsert(PROJECT, RUN, summaryMetrics=summary, state="finished")


def load_page(browser: Any, url: str, smoothing: float = 0.0) -> tuple[float, list[str]]:
    """Seconds from navigation start to the ready mark, and the GraphQL bodies the page sent."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        if smoothing:
            settings = json.dumps({"hidden": [], "smoothing": smoothing, "yScale": "linear"})
            keep = f"localStorage.setItem({json.dumps(SETTINGS_KEY)}, {json.dumps(settings)})"
            context.add_init_script(keep)
        page = context.new_page()
        bodies: list[str] = []
        page.on("request", lambda r: r.url.endswith("/graphql") and bodies.append(r.post_data or ""))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        if errors or page.locator("svg.chart").count() == 0:
            raise RuntimeError(f"the run page did not draw its charts: {errors}")
        smoothed = page.locator("svg.chart path.nbt-smooth").count()
        if smoothing and smoothed != page.locator("svg.chart").count():
            raise RuntimeError(f"smoothing was on but {smoothed} chart(s) drew a smoothed line")
        ready = page.evaluate("performance.getEntriesByName('nbtrack-ready')[0].startTime")
        return ready / 1000, bodies
    finally:
        context.close()


def redraw_times(browser: Any, url: str) -> tuple[list[float], list[float]]:
    """Milliseconds of each redraw of every chart with smoothing off and at SMOOTHING, interleaved."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        weights = [SMOOTHING if i % 2 else 0.0 for i in range(2 * REDRAWS)]
        times: list[float] = page.evaluate(REDRAW_JS, weights)
        if page.locator("svg.chart path.nbt-smooth").count() == 0 and weights[-1]:
            raise RuntimeError("the smoothing slider drew no smoothed line")
        return times[0::2], times[1::2]
    finally:
        context.close()


def replay(url: str, bodies: list[str]) -> float:
    """Seconds the server took to answer the page's queries, one after the other."""
    spent = 0.0
    with requests.Session() as session:
        for body in bodies:
            started = time.perf_counter()
            response = session.post(
                f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}, timeout=120
            )
            spent += time.perf_counter() - started
            if response.status_code != 200 or "errors" in response.json():
                raise RuntimeError(f"a run page query failed: {response.text[:300]}")
    return spent


def measure(url: str, repeats: int) -> tuple[dict[str, float], int]:
    from playwright.sync_api import sync_playwright

    page_url = f"{url}/local/{PROJECT}/runs/{RUN}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            _warm, bodies = load_page(browser, page_url)  # starts the server's caches and the browser
            browser_seconds: list[float] = []
            smoothed_seconds: list[float] = []
            for _ in range(repeats):  # interleaved: a busy machine slows both alike
                browser_seconds.append(load_page(browser, page_url)[0])
                smoothed_seconds.append(load_page(browser, page_url, SMOOTHING)[0])
            redraw_off, redraw_on = redraw_times(browser, page_url)
        finally:
            browser.close()
    server_seconds = [replay(url, bodies) for _ in range(repeats)]
    return {
        "server: run page queries": statistics.median(server_seconds),
        "browser: navigation to charts drawn": statistics.median(browser_seconds),
        "browser: charts drawn, smoothing on": statistics.median(smoothed_seconds),
        "redraw every chart, smoothing off": statistics.median(redraw_off),
        "redraw every chart, smoothing 0.6": statistics.median(redraw_on),
    }, len(bodies)


def print_table(results: dict[str, float], rows: int, queries: int) -> None:
    print(f"\na run of {rows:,} history rows ({len(METRIC_KEYS)} metrics);", end=" ")
    print(f"the run page sends {queries} GraphQL request(s)\n")
    header = f"{'metric':<38} {'value':>9}  {'target':>9}  {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for metric, value in results.items():
        unit, target = TARGETS[metric]
        goal = f"<= {target:g} {unit}"
        print(f"{metric:<38} {value:>7.3f} {unit}  {goal:>9}  {target / value:>5.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="history rows of the run (1,000,000)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per figure (median shown)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 50,000 rows, 1 repeat")
    args = parser.parse_args()
    rows, repeats = (50_000, 1) if args.quick else (args.rows, args.repeats)
    if not Path(CHROMIUM).exists():
        print("bench_ui: Debian's chromium is not installed", file=sys.stderr)
        return 1
    print(
        f"bench_ui {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder))
        try:
            started = time.perf_counter()
            seed(Client(server.url), rows)
            print(f"seeded {rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
            results, queries = measure(server.url, repeats)
        finally:
            server.stop()
    print_table(results, rows, queries)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except requests.RequestException as exc:
        print(f"bench_ui: the server failed: {exc}", file=sys.stderr)
        sys.exit(1)

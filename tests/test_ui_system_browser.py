"""The web UI's System section and the compare page's media, in Debian's Chromium against a real server.

Two runs are logged through nbtrack (online, to a real `nbtrack server`) with system metrics
sampled every 0.2 s (NBTRACK_STATS_INTERVAL), each logging images and histograms at steps 0-2;
each keeps logging until the server holds a few of its samples. A third run samples nothing.
Screenshots go to a folder under pytest's tmp dir (its path is printed). Skipped unless Chromium
and Playwright are installed (`.ci/run` installs them).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from tests.serving import Client, ServerProcess, start_server
from tests.test_ui_browser import CHROMIUM, Watched, browser, watched

__all__ = ["browser", "watched"]  # fixtures shared with test_ui_browser.py, used by name

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
    pytest.mark.timeout(300),
]
sync_api = pytest.importorskip("playwright.sync_api")
np = pytest.importorskip("numpy")
pytest.importorskip("starlette")  # the server's extras

SAMPLES_WANTED = 3  # system samples each run has on the server before it finishes
LOG_DEADLINE = 60.0  # seconds a run may take to get them
EVENTS = "query ($p: String!, $r: String!) { project(name: $p) { run(name: $r) { eventsLineCount } } }"
SYSTEM = "section[data-section='system']"
IMAGES = "section.compare-media[data-key='samples'] img"  # the compare page's images of key "samples"


def _feet(step: int) -> list[str]:
    """What the compare page says under the two runs' images at a step."""
    return [f"32 \N{MULTIPLICATION SIGN} 32 · step {step} — {name} {step}" for name in ("red", "green")]


@dataclass
class Seeded:
    server: ServerProcess
    ids: dict[str, str]  # run name -> run id
    shots: Path


def _events(client: Client, project: str, run_id: str) -> int:
    found = client.data(EVENTS, p=project, r=run_id)["project"]
    return 0 if found is None or found["run"] is None else int(found["run"]["eventsLineCount"])


def _log_run(root: Path, url: str, name: str, colour: int, sampled: bool) -> str:
    """A run of project "sys": images and histograms at steps 0-2, then rows until the server holds
    SAMPLES_WANTED system samples (when sampled)."""
    run = nbtrack.init(project="sys", name=name, base_url=url, dir=str(root))
    client = Client(url)
    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    pixels[:, :, colour] = 255
    deadline = time.monotonic() + LOG_DEADLINE
    pause = threading.Event()
    step = 0
    while True:
        row: dict[str, Any] = {"loss": math.exp(-step / 10)}
        if step < 3:
            pixels[: 8 * (step + 1), :, (colour + 1) % 3] = 200  # each step's image differs
            row["samples"] = nbtrack.Image(pixels, caption=f"{name} {step}")
            row["weights"] = nbtrack.Histogram(np.arange(50) * (step + 1 + colour), num_bins=10)
        if step == 2:
            row["predictions"] = nbtrack.Table(
                columns=["image", "label"], data=[[i, f"{name}-{i}"] for i in range(3)]
            )
        run.log(row)
        step += 1
        if step >= 3 and (not sampled or _events(client, "sys", run.id) >= SAMPLES_WANTED):
            break
        assert time.monotonic() < deadline, f"{name}: the server got no {SAMPLES_WANTED} system samples"
        pause.wait(0.1)  # between polls of the server
    run.finish()
    return run.id


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    tmp = tmp_path_factory.mktemp("ui-system")
    shots = tmp_path_factory.mktemp("ui-system-screenshots")
    print(f"\nscreenshots of the System section and compare media: {shots}")
    server = start_server(tmp)
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("NBTRACK_STATS_INTERVAL", "0.2")
            ids = {
                "red": _log_run(tmp / "client", server.url, "red", 0, True),
                "green": _log_run(tmp / "client", server.url, "green", 1, True),
            }
            env.setenv("NBTRACK_STATS_INTERVAL", "0")
            ids["quiet"] = _log_run(tmp / "client", server.url, "quiet", 2, False)
        yield Seeded(server, ids, shots)
    finally:
        server.stop()


def _system_charts(page: Any) -> dict[str, dict[str, Any]]:
    """Each System chart's title -> {series drawn, series with a line, points, heading text}."""
    found: dict[str, dict[str, Any]] = page.eval_on_selector_all(
        f"{SYSTEM} .chart-card",
        """cards => Object.fromEntries(cards.map(card => {
            const svg = card.querySelector('svg.chart');
            return [card.dataset.key, {
                series: Number(svg.dataset.seriesCount),
                lines: [...svg.querySelectorAll('path.nbt-line')].filter(p => p.getAttribute('d')).length,
                points: Number(svg.dataset.points),
                heading: card.querySelector('h3').innerText,
            }];
        }))""",
    )
    return found


def _shot(seeded: Seeded, watched: Watched, name: str) -> None:
    watched.page.screenshot(path=str(seeded.shots / f"{name}.png"), full_page=True)


def test_a_run_page_has_a_system_section_with_cpu_and_memory_charts(seeded: Seeded, watched: Watched) -> None:
    page = watched.open(f"{seeded.server.url}/local/sys/runs/{seeded.ids['red']}")
    section = page.locator(SYSTEM)
    assert section.is_visible()
    assert section.locator("h2").inner_text() == "System"
    charts = _system_charts(page)
    for title in ("CPU (%)", "Memory used (%)", "Process CPU (%)", "Process memory (MB)"):
        assert title in charts, sorted(charts)
        chart = charts[title]
        assert chart["heading"] == title, "the unit is in the title a person reads"
        assert chart["series"] == 1 and chart["lines"] == 1, chart
        assert chart["points"] >= SAMPLES_WANTED, chart
    assert "Disk read (MB/s)" in charts and "Network sent (MB/s)" in charts
    assert not [title for title in charts if title.startswith("GPU")], "no GPU here: no GPU chart"
    # The metric charts are still the history's alone.
    metric_keys = page.eval_on_selector_all(
        "section[aria-labelledby='charts-title'] svg.chart", "svgs => svgs.map(s => s.dataset.key)"
    )
    assert metric_keys == ["loss"]
    # The x axis: runtime, or wall time (the tooltip says which).
    assert section.get_by_role("button", name="Runtime").get_attribute("aria-pressed") == "true"
    svg = section.locator(".chart-card[data-key='CPU (%)'] svg.chart")
    svg.scroll_into_view_if_needed()
    box = svg.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    tip = section.locator(".chart-card[data-key='CPU (%)'] .chart-tip")
    tip.wait_for(state="visible")
    assert tip.inner_text().startswith("runtime ")
    _shot(seeded, watched, "run-system")
    section.get_by_role("button", name="Wall time").click()
    page.wait_for_selector(f"{SYSTEM}[data-x='_timestamp']")
    assert section.get_by_role("button", name="Wall time").get_attribute("aria-pressed") == "true"
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2)
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    tip.wait_for(state="visible")
    assert not tip.inner_text().startswith("runtime "), "wall time reads as a date"
    assert not watched.errors, watched.errors


def test_a_run_without_system_metrics_shows_no_system_section(seeded: Seeded, watched: Watched) -> None:
    page = watched.open(f"{seeded.server.url}/local/sys/runs/{seeded.ids['quiet']}")
    assert page.locator("svg.chart[data-key='loss']").count() == 1
    assert page.locator(SYSTEM).is_hidden()
    assert not watched.errors, watched.errors


def test_the_compare_page_overlays_both_runs_system_metrics(seeded: Seeded, watched: Watched) -> None:
    ids = seeded.ids
    page = watched.open(f"{seeded.server.url}/local/sys/compare?runs={ids['red']},{ids['green']}")
    section = page.locator(SYSTEM)
    assert section.is_visible()
    charts = _system_charts(page)
    for title in ("CPU (%)", "Memory used (%)"):
        assert charts[title]["series"] == 2 and charts[title]["lines"] == 2, charts[title]
    # The tooltip names both runs.
    svg = section.locator(".chart-card[data-key='Memory used (%)'] svg.chart")
    svg.scroll_into_view_if_needed()
    box = svg.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    tip = section.locator(".chart-card[data-key='Memory used (%)'] .chart-tip")
    tip.wait_for(state="visible")
    assert tip.locator(".tip-name").all_inner_texts() == ["red", "green"]
    _shot(seeded, watched, "compare-system")
    assert not watched.errors, watched.errors


def test_the_compare_page_shows_images_and_histograms_side_by_side(seeded: Seeded, watched: Watched) -> None:
    ids = seeded.ids
    page = watched.open(f"{seeded.server.url}/local/sys/compare?runs={ids['red']},{ids['green']}")
    row = page.locator("section.compare-media[data-key='samples']")
    images = row.locator("img")
    assert images.count() == 2
    page.wait_for_function(
        """selector => { const imgs = [...document.querySelectorAll(selector)];
            return imgs.length === 2 && imgs.every(img => img.complete && img.naturalWidth > 0); }""",
        arg=IMAGES,
        timeout=30_000,
    )
    assert (
        images.evaluate_all("imgs => imgs.map(img => [img.naturalWidth, img.naturalHeight])")
        == [[32, 32]] * 2
    )
    first, second = images.nth(0).bounding_box(), images.nth(1).bounding_box()
    assert first is not None and second is not None
    assert abs(first["y"] - second["y"]) < 2 and second["x"] > first["x"] + first["width"], "side by side"
    assert row.locator("figcaption").all_inner_texts() == ["red", "green"]
    assert row.locator(".media-foot").all_inner_texts() == _feet(2)
    # The images are not described in the summary table any more, so nothing says "(differs)" there.
    assert page.locator("table.compare[data-table='summary'] tr[data-key='samples']").count() == 0
    assert page.locator("table.compare[data-table='summary'] tr[data-key='loss']").count() == 1
    # Histograms: drawn small, one per run.
    histograms = page.locator("section.compare-media[data-key='weights'] svg.histogram.small")
    assert histograms.count() == 2
    assert histograms.evaluate_all("svgs => svgs.map(s => s.dataset.bars)") == ["10", "10"]
    # One slider over the steps: both runs at step 0.
    slider = row.locator("input.media-step")
    slider.wait_for()
    assert slider.get_attribute("max") == "2"
    sources = images.evaluate_all("imgs => imgs.map(img => img.src)")
    slider.evaluate("input => { input.value = '0'; input.dispatchEvent(new Event('input')); }")
    page.wait_for_function(
        """([selector, before]) => [...document.querySelectorAll(selector)].every(
            (img, i) => img.src !== before[i] && img.complete && img.naturalWidth > 0)""",
        arg=[IMAGES, sources],
        timeout=30_000,
    )
    assert row.locator(".media-foot").all_inner_texts() == _feet(0)
    assert row.locator(".media-step-label").inner_text() == "step 0"
    # Tables: each run's rows in its own cell, side by side, not just their size.
    tables = page.locator("section.compare-media[data-key='predictions'] table.media-table")
    tables.nth(1).wait_for()
    assert tables.count() == 2
    assert tables.nth(0).locator("tbody td").all_inner_texts() == ["0", "red-0", "1", "red-1", "2", "red-2"]
    assert tables.nth(1).locator("tbody td").all_inner_texts() == [
        "0",
        "green-0",
        "1",
        "green-1",
        "2",
        "green-2",
    ]
    left, right = tables.nth(0).bounding_box(), tables.nth(1).bounding_box()
    assert left is not None and right is not None and right["x"] > left["x"] + left["width"] - 1
    _shot(seeded, watched, "compare-media")
    assert not watched.errors, watched.errors


def test_a_running_runs_system_charts_grow_while_the_page_is_open(tmp_path: Path, watched: Watched) -> None:
    server = start_server(tmp_path)
    run = None
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("NBTRACK_STATS_INTERVAL", "0.2")
            run = nbtrack.init(project="live", name="live", base_url=server.url, dir=str(tmp_path / "c"))
        run.log({"loss": 1.0})
        client = Client(server.url)
        deadline = time.monotonic() + LOG_DEADLINE
        while _events(client, "live", run.id) < 2:
            assert time.monotonic() < deadline, "the server got no system samples"
            threading.Event().wait(0.1)
        page = watched.open(f"{server.url}/local/live/runs/{run.id}")
        assert page.locator(SYSTEM).is_visible()
        drawn = _system_charts(page)["CPU (%)"]["points"]
        # The section follows the run: more samples are drawn without a reload.
        page.wait_for_function(
            "([selector, drawn]) => Number(document.querySelector(selector).dataset.points) > drawn",
            arg=[f"{SYSTEM} svg.chart[data-key='CPU (%)']", drawn],
            timeout=30_000,
        )
        run.finish()
        run = None
        assert not watched.errors, watched.errors
    finally:
        if run is not None:
            run.finish()
        server.stop()

"""Kept summaries and the charts' settings in the web UI, in Debian's Chromium against a real server.

Kept summaries (`define_metric(summary="max")`) read "max 0.9894" in the runs table (which sorts
by the number), on the run page and in the comparison. The charts: smoothing draws a smoothed
line over the faint raw one (whose min/max buckets keep a spike), a log y axis ticks on powers of
ten and says what it leaves off, and a hidden chart stays hidden after a reload. Screenshots go to
test-artifacts/ui-charts-*.png. Skipped unless Chromium and Playwright are installed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from tests.serving import Client, ServerProcess, start_server
from tests.test_ui_browser import CHROMIUM, READY, Watched, browser, watched

__all__ = ["browser", "watched"]  # fixtures shared with test_ui_browser.py, used by name

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
    pytest.mark.timeout(300),
]

SPIKE_STEP = 12_345
SPIKY_ROWS = 25_000  # more than the server charts exactly (store/chart_read.RAW_LINES): min/max buckets


@dataclass
class Seeded:
    server: ServerProcess
    ids: dict[str, str]  # run name -> run id


def _kept_max_run(root: Path, url: str, name: str, accuracy: list[float], **extra: float) -> str:
    run = nbtrack.init(project="charts", name=name, base_url=url, dir=str(root))
    run.define_metric("val/acc", summary="max")
    for step, acc in enumerate(accuracy):
        # loss spans three decades (1 -> 0.001); delta crosses 0, which a log axis cannot show.
        loss = 10 ** (-3 * step / (len(accuracy) - 1))
        run.log(
            {
                "val/acc": acc,
                "loss": loss,
                "delta": math.sin(step / 4),
                **{k: v - step for k, v in extra.items()},
            }
        )
    run.finish()
    return run.id


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    tmp = tmp_path_factory.mktemp("ui-charts")
    server = start_server(tmp)
    try:
        root = tmp / "client"
        best = [0.5 + 0.4893873510407052 * math.sin(math.pi * s / 60) for s in range(61)]  # peaks at step 30
        ids = {
            "best": _kept_max_run(root, server.url, "best", best),
            "middle": _kept_max_run(root, server.url, "middle", [0.3, 0.95, 0.7] * 10),
            # gap: only values below 0, which a log axis cannot show at all.
            "worst": _kept_max_run(root, server.url, "worst", [0.1, 0.5, 0.2] * 10, gap=-1.0),
        }
        assert max(best) == 0.9893873510407052
        # A long noisy run with one spike: the server sends min/max buckets, not every row.
        client = Client(server.url)
        client.upsert("spiky", "spiky1", displayName="spiky")
        for start in range(0, SPIKY_ROWS, 10_000):
            rows = [
                json.dumps({"_step": s, "_runtime": s / 100, "_timestamp": 1.7e9 + s, "noisy": _noisy(s)})
                for s in range(start, min(start + 10_000, SPIKY_ROWS))
            ]
            body = {"files": {"wandb-history.jsonl": {"offset": start, "content": rows}}}
            assert client.stream("spiky", "spiky1", body).status_code == 200
        client.upsert("spiky", "spiky1", state="finished")
        ids["spiky"] = "spiky1"
        yield Seeded(server, ids)
    finally:
        server.stop()


def _noisy(step: int) -> float:
    """About 1 ± 0.1, and 50 at SPIKE_STEP alone."""
    return 50.0 if step == SPIKE_STEP else 1 + 0.1 * math.sin(step * 12.9898)


def _shot(watched: Watched, name: str) -> None:
    watched.shot(f"charts-{name}")  # test-artifacts/ui-charts-<name>.png


def _cell_texts(page: Any, column: str) -> list[str]:
    cells = page.locator(f"table.runs tbody td:nth-child({_column_index(page, column)})")
    return [text.strip() for text in cells.all_inner_texts()]


def _column_index(page: Any, column: str) -> int:
    """The 1-based index of a column's cells in a row (the selection checkbox is cell 1)."""
    index: int = page.eval_on_selector(
        "table.runs thead tr:last-child",
        "(row, id) => [...row.children].findIndex(th => th.dataset.column === id) + 2",
        column,
    )
    return index


def _y_tick_labels(page: Any, key: str) -> list[str]:
    """The y axis' labels of a chart, bottom to top (they are the right-anchored ticks)."""
    labels: list[str] = page.eval_on_selector(
        f"svg.chart[data-key='{key}']",
        """svg => [...svg.querySelectorAll("text.nbt-tick[text-anchor='end']")]
            .sort((a, b) => Number(b.getAttribute('y')) - Number(a.getAttribute('y')))
            .map(t => t.textContent)""",
    )
    return labels


# -- kept summaries ---------------------------------------------------------------------------------


def test_a_kept_summary_reads_max_0_9894_in_the_table_the_run_page_and_the_comparison(
    seeded: Seeded, watched: Watched
) -> None:
    base, ids = seeded.server.url, seeded.ids
    page = watched.open(f"{base}/local/charts")
    names = lambda: [t.strip() for t in page.locator("table.runs tbody td.name a").all_inner_texts()]  # noqa: E731
    header = page.locator("th[data-column='summary:val/acc']")
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert names() == ["worst", "middle", "best"], "sorted by the kept maximum, 0.5 < 0.95 < 0.989"
    assert _cell_texts(page, "summary:val/acc") == ["max 0.5", "max 0.95", "max 0.9894"]
    header.locator("button").click()
    assert names() == ["best", "middle", "worst"]
    assert page.locator("table.runs", has_text="{").count() == 0, "no raw JSON anywhere in the table"
    _shot(watched, "summary-table")

    page.get_by_role("link", name="best").click()
    page.wait_for_selector(READY)
    row = page.locator("table.kv tr", has=page.locator("th", has_text="val/acc"))
    assert row.locator("td").inner_text() == "max 0.9894"
    _shot(watched, "summary-run")

    watched.open(f"{base}/local/charts/compare?runs={ids['best']},{ids['worst']}")
    cells = page.locator("table[data-table='summary'] tr[data-key='val/acc'] td")
    assert cells.all_inner_texts() == ["max 0.9894", "max 0.5"]
    _shot(watched, "summary-compare")
    assert not watched.errors, watched.errors


# -- smoothing ----------------------------------------------------------------------------------


_PATH_TOP = """(svg, selector) => {
    const path = svg.querySelector(selector);
    const pairs = (path?.getAttribute('d') || '').match(/-?[\\d.]+,-?[\\d.]+/g) || [];
    const ys = pairs.map(p => Number(p.split(',')[1]));
    return ys.length ? Math.min(...ys) : null;
}"""


def test_smoothing_draws_a_smoothed_line_over_the_faint_raw_one_which_keeps_the_spike(
    seeded: Seeded, watched: Watched
) -> None:
    page = watched.open(f"{seeded.server.url}/local/spiky/runs/{seeded.ids['spiky']}")
    chart = page.locator("svg.chart[data-key='noisy']")
    assert int(chart.get_attribute("data-points") or 0) <= 1000, "the server sent min/max buckets"
    assert page.locator("svg.chart path.nbt-smooth").count() == 0, "no smoothing until asked"
    raw_top_before = chart.evaluate(_PATH_TOP, "path.nbt-line")

    slider = page.get_by_label("Smoothing")
    slider.fill("0.9")
    page.wait_for_selector("svg.chart[data-key='noisy'] path.nbt-smooth[d^='M']")
    assert page.locator(".smoothing-value").inner_text() == "0.90"
    raw = chart.locator("path.nbt-line.nbt-raw")
    smooth = chart.locator("path.nbt-smooth")
    assert raw.count() == 1 and smooth.count() == 1
    assert raw.get_attribute("d") and smooth.get_attribute("d") != raw.get_attribute("d")
    opacity = lambda node: float(node.evaluate("p => getComputedStyle(p).strokeOpacity"))  # noqa: E731
    assert opacity(raw) < 0.5 <= opacity(smooth), "the raw line is faint behind the smoothed one"
    assert raw.get_attribute("data-series") == smooth.get_attribute("data-series") == "0", "one colour"
    # The spike of 50 among values near 1 is the raw layer's top; the smoothed line stays far below.
    raw_top = chart.evaluate(_PATH_TOP, "path.nbt-raw")
    smooth_top = chart.evaluate(_PATH_TOP, "path.nbt-smooth")
    plot_top = 10  # charts.js MARGIN.top
    assert raw_top == raw_top_before and raw_top <= plot_top + 12, (raw_top, raw_top_before)
    assert smooth_top > raw_top + 100, (smooth_top, raw_top)
    # The tooltip gives the smoothed value and the raw one.
    box = chart.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] / 2)
    tip = page.locator(".chart-card[data-key='noisy'] .chart-tip")
    tip.wait_for(state="visible")
    assert "(raw " in tip.inner_text()
    _shot(watched, "smoothing")

    # Kept for the project: after a reload the slider and the lines are as they were.
    watched.open(page.url)
    page.wait_for_selector("svg.chart[data-key='noisy'] path.nbt-smooth[d^='M']")
    assert page.get_by_label("Smoothing").input_value() == "0.9"
    page.get_by_label("Smoothing").fill("0")
    page.wait_for_function("() => !document.querySelector('svg.chart path.nbt-smooth')")
    assert chart.locator("path.nbt-raw").count() == 0, "off again: the raw line is the line"
    assert not watched.errors, watched.errors


# -- log scale ----------------------------------------------------------------------------------


def test_a_log_y_axis_ticks_on_powers_of_ten_and_says_what_it_leaves_off(
    seeded: Seeded, watched: Watched
) -> None:
    page = watched.open(f"{seeded.server.url}/local/charts/runs/{seeded.ids['best']}")
    linear = _y_tick_labels(page, "loss")
    assert linear[-1] in ("1", "1.0") and "0.01" not in linear, linear
    page.get_by_role("button", name="Log").click()
    page.wait_for_selector("svg.chart[data-key='loss'][data-y-scale='log']")
    assert _y_tick_labels(page, "loss") == ["0.001", "0.01", "0.1", "1"]
    assert page.locator("[data-y-scale='log'][aria-pressed='true']").count() == 1
    # Equal distances between decades: a log axis, not linear ticks with odd labels.
    ys = page.eval_on_selector(
        "svg.chart[data-key='loss']",
        "svg => [...svg.querySelectorAll(`text.nbt-tick[text-anchor='end']`)]"
        ".map(t => Number(t.getAttribute('y')))",
    )
    gaps = [round(b - a, 1) for a, b in zip(sorted(ys), sorted(ys)[1:], strict=False)]
    assert len(set(gaps)) == 1, gaps
    # delta (a sine) has values <= 0: the card says how many the log axis leaves off.
    note = page.locator(".chart-card[data-key='delta'] .chart-note")
    assert note.is_visible()
    off = int(page.locator("svg.chart[data-key='delta']").get_attribute("data-off-scale") or 0)
    assert off > 0 and note.inner_text() == f"{off} points ≤ 0 left off the log scale."
    assert page.locator(".chart-card[data-key='loss'] .chart-note").is_hidden()
    _shot(watched, "log")
    # A chart without a value above 0 stays linear, and says so; the choice is the project's.
    watched.open(f"{seeded.server.url}/local/charts/runs/{seeded.ids['worst']}")
    assert page.locator("svg.chart[data-key='gap']").get_attribute("data-y-scale") == "linear"
    gap_note = page.locator(".chart-card[data-key='gap'] .chart-note")
    assert gap_note.inner_text() == "No value above 0: drawn on a linear scale."
    assert page.locator("svg.chart[data-key='loss']").get_attribute("data-y-scale") == "log"
    page.get_by_role("button", name="Linear").click()
    page.wait_for_selector("svg.chart[data-key='loss'][data-y-scale='linear']")
    assert gap_note.is_hidden() and page.locator(".chart-note:visible").count() == 0
    assert not watched.errors, watched.errors


# -- choosing charts ----------------------------------------------------------------------------


def test_a_hidden_chart_stays_hidden_after_a_reload_and_on_the_comparison(
    seeded: Seeded, watched: Watched
) -> None:
    base, ids = seeded.server.url, seeded.ids
    page = watched.open(f"{base}/local/charts/runs/{ids['middle']}")
    keys = lambda: page.eval_on_selector_all("svg.chart", "svgs => svgs.map(s => s.dataset.key)")  # noqa: E731
    assert keys() == ["delta", "loss", "val/acc"]
    page.get_by_role("button", name="Hide chart delta").click()
    assert keys() == ["loss", "val/acc"]
    assert page.locator(".chart-chooser summary").inner_text() == "Charts 2 of 3"

    watched.open(page.url)
    assert keys() == ["loss", "val/acc"], "still hidden after a reload"
    watched.open(f"{base}/local/charts/compare?runs={ids['middle']},{ids['best']}")
    assert keys() == ["loss", "val/acc"], "and on the project's comparison"
    page.locator(".chart-chooser summary").click()
    chooser = page.get_by_role("group", name="Charts shown")
    assert chooser.get_by_label("delta").is_checked() is False
    chooser.get_by_label("loss").uncheck()
    assert keys() == ["val/acc"]
    _shot(watched, "chooser")
    chooser.get_by_label("delta").check()
    assert keys() == ["delta", "val/acc"]
    page.get_by_role("button", name="Show all").click()
    assert keys() == ["delta", "loss", "val/acc"]
    page.keyboard.press("Escape")
    assert chooser.is_hidden(), "Escape closes the menu"

    watched.open(f"{base}/local/charts/runs/{ids['middle']}")
    assert keys() == ["delta", "loss", "val/acc"], "shown again after a reload"
    # Another project keeps its own choice.
    page.get_by_role("button", name="Hide chart loss").click()
    watched.open(f"{base}/local/spiky/runs/{ids['spiky']}")
    assert keys() == ["noisy"]
    assert not watched.errors, watched.errors

"""The runs table for hyperparameter work, in Debian's Chromium (Playwright) against a real server.

A small sweep is logged through the real client (config lr, opt, dropout; summaries val_acc and
val_loss, one NaN and one missing). What a person sees: a column hidden or shown in the "Columns"
menu stays so after a reload; grouping by lr shows each group's run count and, per summary
column, the mean and min-max the test computes from the logged values (the NaN and the missing
value said); parallel coordinates draw one line per run and the scatter one dot per run with both
numbers; a run checked in the table is highlighted in both, a brushed axis range checks exactly the
runs inside it, a clicked dot checks its run; the projects page's search finds a run of another
project by tag and by config value, and its link opens the run's page. Screenshots go to
test-artifacts/ui-runs-table-*.png. Skipped unless Chromium and Playwright are installed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack.formatting import format_number
from tests.serving import ServerProcess, start_server
from tests.test_ui_browser import CHROMIUM, READY, Watched, browser, watched

__all__ = ["browser", "watched"]  # fixtures shared with test_ui_browser.py, used by name

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
    pytest.mark.timeout(300),
]

NAN = math.nan
DASH = "\N{EN DASH}"  # between a group's min and max
SELECTED_LINES = "n => document.querySelectorAll('svg.parallel path.pc-line.selected').length === n"
# name -> (config, summaries logged); s5 logs no val_acc, s3's val_loss is NaN.
SWEEP: dict[str, tuple[dict[str, Any], dict[str, float]]] = {
    "s1": ({"lr": 0.1, "opt": "adam", "dropout": 0.1}, {"val_acc": 0.91, "val_loss": 0.30}),
    "s2": ({"lr": 0.1, "opt": "sgd", "dropout": 0.3}, {"val_acc": 0.85, "val_loss": 0.45}),
    "s3": ({"lr": 0.01, "opt": "adam", "dropout": 0.2}, {"val_acc": 0.88, "val_loss": NAN}),
    "s4": ({"lr": 0.01, "opt": "sgd", "dropout": 0.5}, {"val_acc": 0.80, "val_loss": 0.60}),
    "s5": ({"lr": 0.001, "opt": "adam", "dropout": 0.3}, {"val_loss": 0.70}),
    "s6": ({"lr": 0.01, "opt": "adam", "dropout": 0.4}, {"val_acc": 0.83, "val_loss": 0.5}),
}


@dataclass
class Sweep:
    server: ServerProcess
    ids: dict[str, str]  # run name -> run id


def _sweep_run(root: Path, url: str, project: str, name: str, config: dict[str, Any], **init: Any) -> str:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NBTRACK_STATS_INTERVAL", "0")
        run = nbtrack.init(project=project, name=name, base_url=url, dir=str(root), config=config, **init)
    for step in range(3):  # the summary keeps the last value logged
        run.log({key: value * (1 + (2 - step) / 10) for key, value in SWEEP.get(name, ({}, {}))[1].items()})
    run.finish()
    return run.id


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    tmp = tmp_path_factory.mktemp("ui-runs-table")
    server = start_server(tmp)
    try:
        root = tmp / "client"
        ids = {name: _sweep_run(root, server.url, "sweep", name, c) for name, (c, _) in SWEEP.items()}
        ids["needle"] = _sweep_run(
            root, server.url, "elsewhere", "needle-run", {"arch": "resnet-needle"}, tags=["haystack"]
        )
        yield Sweep(server, ids)
    finally:
        server.stop()


def _shot(watched: Watched, name: str) -> None:
    watched.shot(f"runs-table-{name}")  # test-artifacts/ui-runs-table-<name>.png


def _headers(page: Any) -> list[str]:
    ids: list[str] = page.eval_on_selector_all(
        "table.runs thead tr:last-child th", "ths => ths.map(th => th.dataset.column)"
    )
    return ids


def _checked(page: Any, ids: dict[str, str]) -> set[str]:
    """The names of the runs whose table checkbox is ticked."""
    checked: list[str] = page.eval_on_selector_all(
        "table.runs tbody tr[data-run]",
        "rows => rows.filter(r => r.querySelector('input').checked).map(r => r.dataset.run)",
    )
    by_id = {run_id: name for name, run_id in ids.items()}
    return {by_id[run_id] for run_id in checked}


def _column_toggle(page: Any, column: str) -> Any:
    if page.locator("details.column-menu").get_attribute("open") is None:
        page.locator("details.column-menu > summary").click()
    return page.locator(f"details.column-menu input[data-column='{column}']")


def test_a_column_hidden_or_shown_stays_so_after_a_reload(sweep: Sweep, watched: Watched) -> None:
    page = watched.open(f"{sweep.server.url}/local/sweep")
    assert {"config:dropout", "summary:val_loss", "runtime"} <= set(_headers(page))
    for column in ("config:dropout", "summary:val_loss", "runtime"):
        _column_toggle(page, column).uncheck()
    assert not {"config:dropout", "summary:val_loss", "runtime"} & set(_headers(page))
    assert page.locator("details.column-menu > summary").inner_text() == "Columns (7 of 10)"
    _shot(watched, "columns-menu")
    page.reload()
    page.wait_for_selector(READY)
    headers = _headers(page)
    assert not {"config:dropout", "summary:val_loss", "runtime"} & set(headers), headers
    assert {"name", "config:lr", "summary:val_acc"} <= set(headers)
    assert _column_toggle(page, "name").is_disabled(), "the name column always shows"
    _column_toggle(page, "summary:val_loss").check()
    page.reload()
    page.wait_for_selector(READY)
    headers = _headers(page)
    assert "summary:val_loss" in headers and "config:dropout" not in headers
    cells = page.locator("table.runs tbody td:not(.select)").count()
    assert cells == len(SWEEP) * len(headers), "every row has a cell per shown column"
    _shot(watched, "columns")
    # Another project keeps its own choice: every column shows there.
    page = watched.open(f"{sweep.server.url}/local/elsewhere")
    assert "runtime" in _headers(page)
    page = watched.open(f"{sweep.server.url}/local/sweep")
    # From the keyboard: the focus stays on the checkbox while the table changes behind the menu.
    page.locator("details.column-menu > summary").click()
    page.locator("details.column-menu input[data-column='config:lr']").focus()
    page.keyboard.press("Space")
    assert "config:lr" not in _headers(page)
    assert page.evaluate("document.activeElement.dataset.column") == "config:lr"
    page.keyboard.press("Space")
    assert "config:lr" in _headers(page)
    page.get_by_role("button", name="Show all").click()
    assert {"config:dropout", "runtime"} <= set(_headers(page))
    assert watched.errors == []


def _expected_stats(names: list[str], key: str) -> tuple[str, str, str]:
    values = [SWEEP[name][1].get(key) for name in names]
    numbers = [v for v in values if v is not None and not math.isnan(v)]
    notes = []
    if any(v is not None and math.isnan(v) for v in values):
        notes.append(f"{sum(1 for v in values if v is not None and math.isnan(v))} NaN")
    if any(v is None for v in values):
        notes.append(f"{values.count(None)} missing")
    if not numbers:
        return "no number", "", " · ".join(notes)
    low, high = min(numbers), max(numbers)
    spread = "" if low == high else f"{format_number(low)}{DASH}{format_number(high)}"
    return f"mean {format_number(statistics.fmean(numbers))}", spread, " · ".join(notes)


def test_grouping_by_a_config_key_shows_counts_means_and_ranges(sweep: Sweep, watched: Watched) -> None:
    page = watched.open(f"{sweep.server.url}/local/sweep")
    page.get_by_label("Group runs by").select_option("config:lr")
    groups: dict[float, list[str]] = {}
    for name, (config, _) in SWEEP.items():
        groups.setdefault(config["lr"], []).append(name)
    rows = page.locator("table.runs tbody tr.group-row")
    assert rows.count() == len(groups)
    assert [rows.nth(i).get_attribute("data-group") for i in range(rows.count())] == [
        format_number(lr) for lr in sorted(groups)
    ]
    for i, lr in enumerate(sorted(groups)):
        row = rows.nth(i)
        assert row.get_attribute("data-count") == str(len(groups[lr]))
        runs_word = "run" if len(groups[lr]) == 1 else "runs"
        heading = f"lr = {format_number(lr)} · {len(groups[lr])} {runs_word}"
        assert row.locator("td.group-name").inner_text().strip().endswith(heading)
        for key in ("val_acc", "val_loss"):
            cell = row.locator(f"td.stats[data-column='summary:{key}']")
            mean, spread, note = _expected_stats(groups[lr], key)
            assert cell.locator(".stat-mean").inner_text() == mean, (lr, key)
            assert (cell.locator(".stat-range").inner_text() if spread else "") == spread, (lr, key)
            if spread == "":
                assert cell.locator(".stat-range").count() == 0
            assert (cell.locator(".stat-note").inner_text() if note else "") == note, (lr, key)
    # 0.01's runs hold a NaN: said, and left out of the mean (0.5 and 0.6: mean 0.55).
    assert _expected_stats(groups[0.01], "val_loss") == ("mean 0.55", f"0.5{DASH}0.6", "1 NaN")
    assert _expected_stats(groups[0.001], "val_acc") == ("no number", "", "1 missing")
    # A group opens to its runs, and closes again.
    assert page.locator("table.runs tbody tr[data-run]").count() == 0
    page.locator("tr.group-row", has_text="lr = 0.01").locator("button.group-toggle").click()
    names = page.locator("table.runs tbody tr.in-group td.name a").all_inner_texts()
    assert sorted(n.strip() for n in names) == sorted(groups[0.01])
    _shot(watched, "grouped")
    page.reload()
    page.wait_for_selector(READY)
    assert page.locator("tr.group-row").count() == len(groups), "the grouping is in the address"
    page.locator("tr.group-row", has_text="lr = 0.01").locator("button.group-toggle").click()
    page.locator("tr.group-row", has_text="lr = 0.01").locator("button.group-toggle").click()
    assert page.locator("table.runs tbody tr[data-run]").count() == 0
    assert watched.errors == []


def _brush(page: Any, axis: str, low: float, high: float) -> None:
    """Drags along a linear axis from value low to value high (screen pixels from its domain)."""
    group = page.locator(f"svg.parallel g.pc-axis[data-axis='{axis}']")
    assert group.get_attribute("data-kind") == "linear"
    lo, hi = float(group.get_attribute("data-min")), float(group.get_attribute("data-max"))
    rule = group.locator("line.pc-rule").first.bounding_box()  # the axis itself, top to bottom
    x = rule["x"] + rule["width"] / 2
    y_of = lambda v: rule["y"] + rule["height"] * (hi - v) / (hi - lo)  # noqa: E731
    page.mouse.move(x, y_of(high))
    page.mouse.down()
    page.mouse.move(x, (y_of(high) + y_of(low)) / 2, steps=4)
    page.mouse.move(x, y_of(low), steps=4)
    page.mouse.up()


def test_views_draw_every_run_and_share_the_tables_selection(sweep: Sweep, watched: Watched) -> None:
    ids = sweep.ids
    page = watched.open(f"{sweep.server.url}/local/sweep")
    page.get_by_label("Parallel coordinates metric").select_option("summary:val_loss")
    page.get_by_label("Scatter x axis").select_option("config:lr")
    page.get_by_label("Scatter y axis").select_option("summary:val_acc")
    axes = page.eval_on_selector_all(
        "svg.parallel g.pc-axis", "gs => gs.map(g => [g.dataset.axis, g.dataset.kind])"
    )
    assert axes == [
        ["config:dropout", "linear"],
        ["config:lr", "log"],
        ["config:opt", "category"],
        ["summary:val_loss", "linear"],
    ]
    lines = page.locator("svg.parallel path.pc-line")
    assert lines.count() == len(SWEEP), "one line per run"
    assert sorted(lines.evaluate_all("ps => ps.map(p => p.dataset.run)")) == sorted(ids[n] for n in SWEEP)
    # Colored by val_loss, but for s3 whose val_loss is NaN (drawn plain).
    colored = lines.evaluate_all("ps => ps.filter(p => p.getAttribute('stroke')).map(p => p.dataset.run)")
    assert sorted(colored) == sorted(ids[n] for n in SWEEP if n != "s3")
    with_both = [n for n, (_, s) in SWEEP.items() if "val_acc" in s]
    dots = page.locator("svg.scatter circle.scatter-dot")
    assert dots.count() == len(with_both), "one dot per run with an lr and a val_acc"
    assert page.locator(".scatter-view .view-note").inner_text().startswith("1 run without a number")

    # A run checked in the table is highlighted in both views.
    page.locator(f"tr[data-run='{ids['s2']}'] td.select input").check()
    line = page.locator(f"svg.parallel path.pc-line[data-run='{ids['s2']}']")
    assert line.get_attribute("class") == "pc-line selected"
    assert page.locator("svg.parallel path.pc-line.faded").count() == len(SWEEP) - 1
    assert "selected" in page.locator(f"svg.scatter circle[data-run='{ids['s2']}']").get_attribute("class")
    _shot(watched, "views-selected")

    # A brushed range of dropout (0.15 to 0.35) checks the runs inside it, and only those.
    _brush(page, "config:dropout", 0.15, 0.35)
    inside = {n for n, (c, _) in SWEEP.items() if 0.15 <= c["dropout"] <= 0.35}
    assert inside == {"s2", "s3", "s5"}
    page.wait_for_function(SELECTED_LINES, arg=len(inside))
    assert _checked(page, ids) == inside
    assert page.locator("button.primary", has_text="Compare").inner_text() == f"Compare {len(inside)}"
    # A second brush on the metric (val_loss 0.4 to just past its top, 0.7) narrows it to the runs
    # inside both.
    _brush(page, "summary:val_loss", 0.4, 0.71)
    both = {n for n in inside if 0.4 <= SWEEP[n][1]["val_loss"] <= 0.71}  # s3's NaN is in no range
    assert both == {"s2", "s5"}
    page.wait_for_function(SELECTED_LINES, arg=len(both))
    assert _checked(page, ids) == both
    _shot(watched, "views-brushed")

    # A clicked dot adds its run; clicked again, takes it out.
    page.locator(f"svg.scatter circle[data-run='{ids['s1']}']").click()
    assert _checked(page, ids) == both | {"s1"}
    page.locator(f"svg.scatter circle[data-run='{ids['s1']}']").click()
    assert _checked(page, ids) == both
    assert watched.errors == []


def test_the_projects_page_finds_a_run_of_another_project(sweep: Sweep, watched: Watched) -> None:
    page = watched.open(f"{sweep.server.url}/")
    box = page.get_by_label("Search runs in every project")
    for text in ("haystack", "resnet", "needle"):  # a tag, a config value, the name
        box.fill(text)
        box.press("Enter")
        hits = page.locator("table.search-hits tbody tr")
        hits.first.wait_for()
        assert hits.count() == 1, text
        assert hits.first.get_attribute("data-project") == "elsewhere"
    box.fill("adam")  # a config value of several runs of the sweep
    box.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.search-results [role=status]')?.textContent.startsWith('4 runs')"
    )
    found = page.locator("table.search-hits tbody td.name a").all_inner_texts()
    assert sorted(found) == sorted(n for n, (c, _) in SWEEP.items() if c["opt"] == "adam")
    box.fill("no-such-thing")
    box.press("Enter")
    page.get_by_text("No run matches “no-such-thing”.").wait_for()
    box.fill("needle")
    box.press("Enter")
    _shot(watched, "search")
    page.locator("table.search-hits tbody td.name a", has_text="needle-run").click()
    page.wait_for_url(f"**/local/elsewhere/runs/{sweep.ids['needle']}")
    page.wait_for_selector(READY)
    assert page.locator("h1").inner_text().startswith("needle-run")
    page.go_back()
    page.wait_for_selector("table.search-hits tbody tr")
    again = page.get_by_label("Search runs in every project").input_value()
    assert again == "needle", "the search is in the address"
    assert watched.errors == []

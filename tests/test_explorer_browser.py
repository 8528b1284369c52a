"""A person's view of the explorer: JupyterLab and Notebook 7 in Debian's Chromium (Playwright) run
`%nbtrack show sweep` and `nbtrack.compare(...)` over a store of two runs; the runs table shows
their names, the comparison a chart per shared metric with one line per run, in its run's colour.

Skipped unless Chromium, JupyterLab (Notebook) and Playwright are installed (`.ci/run` installs them).
A screenshot is saved under test-artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_browser import APPS, ARTIFACTS, lab_server, launch_chromium, open_notebook, run_cell, sync_api
from tests.test_explorer import fill

EXPLORER = ".nbtrack-explorer"  # the widget's root element (nbtrack/web/widget/explorer.js)
CELLS = ["%load_ext nbtrack", "%nbtrack show sweep", "nbtrack.compare('sweep/r1', 'sweep/r2')"]

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("app", APPS)
def test_the_runs_table_and_a_comparison_render(tmp_path: Path, root: Path, app: str) -> None:
    """The same notebook in JupyterLab and in Jupyter Notebook 7 (anywidget's front end in each)."""
    pytest.importorskip(app)
    fill(root)
    ARTIFACTS.mkdir(exist_ok=True)
    with (
        lab_server(tmp_path, root, CELLS, "explore.ipynb", app) as url,
        sync_api.sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright)
        page, errors = open_notebook(browser, url, height=1000)
        try:
            for index in range(len(CELLS)):
                run_cell(page, index)
            table = f"{EXPLORER}[data-kind='runs']"
            charts = f"{EXPLORER}[data-kind='compare'] .nbt-compare-card"
            page.wait_for_selector(f"{table} td.nbt-run-name", timeout=60_000)
            page.wait_for_selector(f"{charts} svg path.nbt-line", timeout=60_000)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / f"explorer-{app}-failed.png"))
            raise
        page.locator(f"{EXPLORER}[data-kind='compare']").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"explorer-{app}.png"), full_page=True)
        names = page.locator(f"{table} td.nbt-run-name").all_text_contents()
        chart_keys = page.locator(charts).locator(".nbt-key").all_text_contents()
        loss = page.locator(charts).filter(has_text="loss")
        strokes = loss.locator("path.nbt-line").evaluate_all("ps => ps.map(p => getComputedStyle(p).stroke)")
        drawn = loss.locator("path.nbt-line").evaluate_all("ps => ps.map(p => p.getAttribute('d').length)")
        legend = page.locator(f"{EXPLORER} .nbt-legend-run").all_text_contents()
        marked = page.locator(f"{EXPLORER} tr.nbt-differs td:first-child").all_text_contents()
        browser.close()
    assert names == ["lr=0.01", "lr=0.1"]  # display names, newest first
    assert chart_keys == ["loss", "acc"]
    assert len(strokes) == 2 and strokes[0] != strokes[1]  # one line per run, each its own colour
    assert all(length > 100 for length in drawn)  # lines, not dots
    assert legend == ["lr=0.1", "lr=0.01"]
    assert "config.lr≠" in marked and not any(m.startswith("config.epochs") for m in marked)
    assert not errors, errors

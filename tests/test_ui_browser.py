"""The web UI in Debian's Chromium (driven by Playwright) against a real `nbtrack server`.

Runs are seeded through the real client (`nbtrack.init(base_url=...)`, log, save, finish) and,
for console lines and hostile names, through the file stream. Every page must load with no
console error and no page error. Screenshots (light and dark) go to test-artifacts/ui-*.png.
Skipped unless Chromium and Playwright are installed (`.ci/run` installs them).
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
from tests.serving import FILE_BACKENDS, Client, ServerProcess, create_key, files_on, start_server

CHROMIUM = Path("/usr/bin/chromium")
IMG_LINE = "<img src=z onerror=alert(5)>"  # a console line, printed to stderr by cell [7]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
READY = "body[data-ready='1']"
HOSTILE = "<img src=x onerror=alert(1)>"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
    pytest.mark.timeout(300),
]
sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("starlette")  # the server's extras

LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@dataclass
class Seeded:
    server: ServerProcess
    ids: dict[str, str]  # run name -> run id


@pytest.fixture(autouse=True)
def no_system_metrics(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """These pages' charts are the runs' metrics: a run slowed past the sampling interval by a
    loaded machine must not add System charts to what the tests count."""
    monkeypatch.setenv("NBTRACK_STATS_INTERVAL", "0")


def _log_run(root: Path, url: str, project: str, name: str, steps: int, **init: Any) -> str:
    exit_code = init.pop("exit_code", 0)
    save = init.pop("save", None)
    alerts = init.pop("alerts", ())
    with pytest.MonkeyPatch.context() as env:  # also for the module's seeded runs (no_system_metrics)
        env.setenv("NBTRACK_STATS_INTERVAL", "0")
        run = nbtrack.init(project=project, name=name, base_url=url, dir=str(root), **init)
    for step in range(steps):
        run.log({"loss": math.exp(-step / (steps / 3)), "acc": step / steps})
    for title, text, level in alerts:
        run.alert(title, text, level=level)
    if save is not None:
        run.save(str(save))
    run.finish(exit_code=exit_code)
    return run.id


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One server for the read-only tests: project mnist (three runs) and project hostile."""
    tmp = tmp_path_factory.mktemp("ui")
    server = start_server(tmp)
    try:
        client_root = tmp / "client"
        weights = tmp / "weights.txt"
        weights.write_text("weights 1 2 3\n")
        ids = {
            "alpha": _log_run(
                client_root, server.url, "mnist", "alpha", 50,
                config={"lr": 0.1, "batch_size": 64}, tags=["base"], save=weights,
                alerts=[("loss is low", "below 0.4\nat step 20", "INFO"), ("lr too high", "", "ERROR")],
            ),
            "beta": _log_run(
                client_root, server.url, "mnist", "beta", 80,
                config={"lr": 0.01, "batch_size": 64}, tags=["sweep"],
            ),
            "gamma": _log_run(
                client_root, server.url, "mnist", "gamma", 30,
                config={"lr": 0.001, "batch_size": 128}, exit_code=1,
            ),
        }  # fmt: skip
        client = Client(server.url)
        console = {"output.log": {"offset": 0, "content": ["epoch 1 <b>done</b>", "epoch 2 done"]}}
        assert client.stream("mnist", ids["alpha"], {"files": console}).status_code == 200
        # A run whose every string is markup, written the way any W&B client may write it.
        client.upsert(
            "hostile", "xss1", displayName=HOSTILE, tags=["<script>alert(2)</script>"],
            config='{"<b>key</b>": {"value": "<img src=y onerror=alert(3)>"}}',
        )  # fmt: skip
        rows = [
            json.dumps({"_step": s, "_runtime": s, "_timestamp": 1.7e9 + s, "<i>m</i>": s}) for s in range(5)
        ]
        history = {"wandb-history.jsonl": {"offset": 0, "content": rows}}
        # The second line as nbtrack's console capture writes it (console_format.py).
        captured = {"line": IMG_LINE, "stream": "stderr", "_timestamp": 1.7e9, "_cell": 7}
        history["output.log"] = {"offset": 0, "content": ["<script>alert(4)</script>", json.dumps(captured)]}
        assert client.stream("hostile", "xss1", {"files": history}).status_code == 200
        alert = """mutation { notifyScriptableRunAlert(input: {projectName: "hostile", runName: "xss1",
            title: "<b>alert(6)</b>", text: "<img src=q onerror=alert(7)>", severity: WARN}) { success } }"""
        assert client.data(alert)["notifyScriptableRunAlert"]["success"] is True
        client.upsert("hostile", "xss1", state="finished")
        ids["xss"] = "xss1"
        # A notebook's run whose training cell ran twice: rows of attempt 1 go back to step 0.
        first = [
            {"_step": s, "_runtime": s, "_timestamp": 1.7e9 + s, "_cell": 3, "loss": 1 / (s + 1)}
            for s in range(6)
        ]
        again = [{**row, "_cell": 4, "_attempt": 1, "loss": row["loss"] / 2} for row in first]
        client.upsert("notebook", "rerun", displayName="re-run")
        lines = [json.dumps(row) for row in first + again]
        assert client.stream(
            "notebook", "rerun", {"files": {"wandb-history.jsonl": {"offset": 0, "content": lines}}}
        ).ok
        client.upsert("notebook", "rerun", state="finished")
        yield Seeded(server, ids)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


class Watched:
    """A page whose console errors, page errors and dialogs are collected."""

    def __init__(self, browser: Any, scheme: str = "light") -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, url: str) -> Any:
        self.page.goto(url)
        self.page.wait_for_selector(READY, timeout=30_000)
        return self.page

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    page = Watched(browser)
    yield page
    page.close()


def _charts(page: Any) -> dict[str, dict[str, int]]:
    """Each chart's key -> {series drawn, series with a line, points}."""
    result: dict[str, dict[str, int]] = page.eval_on_selector_all(
        "svg.chart",
        """charts => Object.fromEntries(charts.map(svg => [svg.dataset.key, {
            series: Number(svg.dataset.seriesCount),
            lines: [...svg.querySelectorAll('path.nbt-line')].filter(p => p.getAttribute('d')).length,
            points: Number(svg.dataset.points),
        }]))""",
    )
    return result


def _points(key: str) -> str:
    """A JS function: the number of points the chart of key draws (0 before it exists)."""
    return f"() => Number(document.querySelector(`svg.chart[data-key='{key}']`)?.dataset.points || 0)"


def _names(page: Any) -> list[str]:
    return [text.strip() for text in page.locator("table.runs tbody td.name a").all_text_contents()]


# -- every page --------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_loads_without_errors(seeded: Seeded, browser: Any, scheme: str) -> None:
    base, ids = seeded.server.url, seeded.ids
    watched = Watched(browser, scheme)
    try:
        page = watched.open(base + "/")
        assert page.locator("table.projects tbody tr").count() == 3  # mnist, hostile, notebook
        watched.shot(f"projects-{scheme}")
        watched.open(f"{base}/local/mnist")
        assert sorted(_names(page)) == ["alpha", "beta", "gamma"]
        watched.shot(f"runs-{scheme}")
        watched.open(f"{base}/local/mnist/runs/{ids['alpha']}")
        watched.shot(f"run-{scheme}")
        watched.open(f"{base}/local/mnist/compare?runs={ids['alpha']},{ids['beta']}")
        watched.shot(f"compare-{scheme}")
        # In-app navigation: a link click renders the next page without a reload.
        page.evaluate("window.__sameDocument = true")
        page.get_by_role("link", name="local / mnist").click()
        page.wait_for_selector("table.runs")
        assert page.evaluate("window.__sameDocument") is True
        page.go_back()
        page.wait_for_selector(".legend")
        assert "/compare" in page.url
    finally:
        watched.close()
    assert not watched.errors, watched.errors


def test_an_empty_server_says_how_to_get_a_first_run(tmp_path: Path, watched: Watched) -> None:
    server = start_server(tmp_path)
    try:
        page = watched.open(server.url + "/")
        text = page.locator("main").inner_text()
        assert "No runs yet" in text and "nbtrack demo" in text and server.url in text
        watched.shot("empty")
    finally:
        server.stop()
    assert not watched.errors, watched.errors


# -- the runs table ------------------------------------------------------------------------------


def test_the_runs_table_sorts_and_filters(seeded: Seeded, watched: Watched) -> None:
    page = watched.open(f"{seeded.server.url}/local/mnist")
    assert _names(page) == ["gamma", "beta", "alpha"], "newest first"
    name = page.locator("th[data-column='name']")
    name.locator("button").click()
    assert name.get_attribute("aria-sort") == "ascending"
    assert _names(page) == ["alpha", "beta", "gamma"]
    # Keyboard: the header is a button, so Enter sorts too.
    name.locator("button").focus()
    page.keyboard.press("Enter")
    assert name.get_attribute("aria-sort") == "descending"
    assert _names(page) == ["gamma", "beta", "alpha"]
    assert page.locator("th[data-column='created']").get_attribute("aria-sort") == "none"
    page.locator("th[data-column='config:lr'] button").click()
    assert _names(page) == ["gamma", "beta", "alpha"], "lr ascending: 0.001, 0.01, 0.1"
    assert "sort=config%3Alr" in page.url, "the sort is in the URL"

    page.get_by_label("Filter runs by name, id or tag").fill("sweep")
    assert _names(page) == ["beta"]
    page.get_by_label("Filter runs by name, id or tag").fill("")
    page.get_by_label("Filter runs by state").select_option("failed")
    assert _names(page) == ["gamma"]
    assert page.locator("tr[data-run] .badge").first.get_attribute("data-state") == "failed"
    assert "state=failed" in page.url
    # The view is bookmarkable: loading its URL gives the same rows.
    watched.open(page.url)
    assert _names(page) == ["gamma"]
    assert not watched.errors, watched.errors


# -- one run -----------------------------------------------------------------------------------


def test_a_run_page_draws_one_chart_per_metric_and_zooms(seeded: Seeded, watched: Watched) -> None:
    page = watched.open(f"{seeded.server.url}/local/mnist/runs/{seeded.ids['alpha']}")
    assert page.locator("h1").inner_text() == "alpha"
    charts = _charts(page)
    assert sorted(charts) == ["acc", "loss"]
    assert all(c["series"] == 1 and c["lines"] == 1 and c["points"] == 50 for c in charts.values()), charts
    assert page.locator("table.kv th", has_text="lr").count() == 1
    assert page.locator("pre.console").inner_text() == "epoch 1 <b>done</b>\nepoch 2 done"
    # The run's alerts, newest first, each with its level.
    alerts = page.locator("section[aria-labelledby='alerts-title'] li.alert")
    assert alerts.count() == 2
    assert [alerts.nth(i).get_attribute("data-level") for i in range(2)] == ["error", "info"]
    assert alerts.nth(0).locator(".alert-title").inner_text() == "lr too high"
    assert alerts.nth(1).locator(".alert-text").inner_text() == "below 0.4\nat step 20"
    assert alerts.nth(1).locator(".alert-level").inner_text() == "INFO"

    # Hover: the tooltip shows the step and value nearest the pointer.
    svg = page.locator("svg.chart[data-key='loss']")
    box = svg.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
    tip = page.locator(".chart-card[data-key='loss'] .chart-tip")
    tip.wait_for(state="visible")
    assert tip.inner_text().startswith("step ")

    # Drag to zoom: the chart is fetched again for the range, with fewer points; double-click resets.
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] / 2, steps=4)
    page.mouse.up()
    page.wait_for_function(f"() => ({_points('loss')})() < 50")
    reset = page.get_by_role("button", name="Reset zoom")
    assert reset.is_enabled()
    svg.dblclick()
    page.wait_for_function(f"() => ({_points('loss')})() === 50")
    assert reset.is_disabled()

    # The wall-time axis, kept in the URL.
    page.get_by_role("button", name="Wall time").click()
    page.wait_for_function("() => location.search.includes('x=_timestamp')")
    page.wait_for_selector("[data-x='_timestamp'][aria-pressed='true']")

    # A run file downloads through the authenticated fetch.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download weights.txt").click()
    assert Path(download.value.path()).read_text() == "weights 1 2 3\n"
    assert not watched.errors, watched.errors


def test_the_comparison_overlays_runs_and_marks_differing_config(seeded: Seeded, watched: Watched) -> None:
    page = watched.open(f"{seeded.server.url}/local/mnist")
    compare = page.get_by_role("button", name="Compare")
    assert compare.is_disabled()
    page.get_by_label("Select run alpha").check()
    page.get_by_label("Select run beta").check()
    page.get_by_role("button", name="Compare 2").click()
    page.wait_for_selector(READY)
    assert "/local/mnist/compare?runs=" in page.url
    charts = _charts(page)
    assert sorted(charts) == ["acc", "loss"]
    assert all(c["series"] == 2 and c["lines"] == 2 for c in charts.values()), charts
    assert charts["loss"]["points"] == 50 + 80
    assert page.locator(".legend li a").all_inner_texts() == ["beta", "alpha"], "in the table's order"
    config = page.locator("table[data-table='config']")
    assert "differs" in (config.locator("tr[data-key='lr']").get_attribute("class") or "")
    assert "differs" not in (config.locator("tr[data-key='batch_size']").get_attribute("class") or "")
    page.get_by_label("Only keys that differ").check()
    assert config.locator("tbody tr").count() == 1
    watched.shot("compare-differs")

    # Zoom and axis act on both runs at once, as on a run's page.
    box = page.locator("svg.chart[data-key='loss']").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] / 2, steps=4)
    page.mouse.up()
    page.wait_for_function(f"() => ({_points('loss')})() < 50 + 80")
    assert _charts(page)["loss"]["series"] == 2
    page.get_by_role("button", name="Runtime").click()
    page.wait_for_function("() => /runs=.*x=_runtime/.test(location.search)")
    page.wait_for_function(f"() => ({_points('loss')})() === 50 + 80")
    assert not watched.errors, watched.errors


# -- a live run ------------------------------------------------------------------------------------


def test_a_running_runs_chart_grows_while_it_logs(tmp_path: Path, watched: Watched) -> None:
    server = start_server(tmp_path)
    run = nbtrack.init(project="live", name="growing", base_url=server.url, dir=str(tmp_path / "client"))
    try:
        for step in range(5):
            run.log({"loss": 1 / (step + 1)})
        assert run.url == f"{server.url}/local/live/runs/{run.id}", "the panel's link is the run page"
        page = watched.page
        page.goto(run.url)
        count = _points("loss")
        page.wait_for_function(f"() => ({count})() >= 1", timeout=30_000)
        assert page.locator(".run-head .badge").get_attribute("data-state") == "running"
        first = page.evaluate(count)
        for step in range(5, 40):
            run.log({"loss": 1 / (step + 1)})
        page.wait_for_function(f"() => ({count})() > {first}", timeout=30_000)
        watched.shot("live")
        run.finish()
        page.wait_for_selector(".run-head .badge[data-state='finished']", timeout=30_000)
        page.wait_for_function(f"() => ({count})() === 40", timeout=30_000)
    finally:
        if nbtrack.run is not None:
            nbtrack.run.finish()
        server.stop()
    assert not watched.errors, watched.errors


# -- hostile text ---------------------------------------------------------------------------------


def test_markup_in_names_and_values_is_shown_as_text(seeded: Seeded, watched: Watched) -> None:
    page = watched.open(f"{seeded.server.url}/local/hostile")
    assert _names(page) == [HOSTILE]
    assert page.locator("td .tag").inner_text() == "<script>alert(2)</script>"
    page.get_by_role("link", name=HOSTILE).click()
    page.wait_for_selector(READY)
    assert page.locator("h1").inner_text() == HOSTILE
    assert page.locator("table.kv th", has_text="<b>key</b>").count() == 1
    assert page.locator("table.kv td", has_text="<img src=y onerror=alert(3)>").count() == 1
    assert page.locator("pre.console").inner_text() == f"<script>alert(4)</script>\n[7] {IMG_LINE}"
    assert page.locator("pre.console .console-stderr").inner_text() == IMG_LINE
    assert page.locator("li.alert .alert-title").inner_text() == "<b>alert(6)</b>"
    assert page.locator("li.alert .alert-text").inner_text() == "<img src=q onerror=alert(7)>"
    assert page.locator("svg.chart").get_attribute("data-key") == "<i>m</i>"
    page.locator("svg.chart").hover()
    assert page.evaluate("document.querySelectorAll('img, main script, b, i').length") == 0
    assert page.title().startswith(HOSTILE)
    watched.shot("hostile")
    assert watched.dialogs == []
    assert not watched.errors, watched.errors


# -- API keys ---------------------------------------------------------------------------------------


def test_with_keys_the_ui_asks_for_one_and_then_shows_the_runs(tmp_path: Path, watched: Watched) -> None:
    server = start_server(tmp_path)
    try:
        key = create_key(server, "alice")
        client_root = str(tmp_path / "client")
        run = nbtrack.init(project="secret", name="hidden", base_url=server.url, api_key=key, dir=client_root)
        run.log({"loss": 1.0})
        run.finish()
        page = watched.page
        challenges: list[str] = []
        page.on(
            "response",
            lambda r: r.status == 401 and "www-authenticate" in r.headers and challenges.append(r.url),
        )
        page.goto(server.url + "/")
        page.wait_for_selector("#api-key")
        watched.shot("key")
        page.fill("#api-key", "nbt_not_a_key")
        page.keyboard.press("Enter")
        page.wait_for_selector(".key-form .notice.error")
        page.fill("#api-key", key)
        page.keyboard.press("Enter")
        page.wait_for_selector(READY)
        assert page.locator("table.projects tbody tr").count() == 1
        page.get_by_role("link", name="alice / secret").click()
        page.wait_for_selector("table.runs")
        assert _names(page) == ["hidden"]
        assert page.evaluate("sessionStorage.getItem('nbtrack.apiKey')") == key
        assert page.evaluate("localStorage.length") == 0, "the key is kept for the tab only"
        assert challenges == [], "no WWW-Authenticate challenge: no native login dialog"
        page.get_by_role("button", name="Forget key").click()
        page.wait_for_selector("#api-key")
    finally:
        server.stop()
    # The browser logs each 401 it was answered; anything else is a real error.
    assert [e for e in watched.errors if "status of 401" not in e] == []


# -- media ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", FILE_BACKENDS)
def test_a_run_page_shows_logged_media_fetched_with_the_key(
    tmp_path: Path, watched: Watched, backend: str
) -> None:
    np = pytest.importorskip("numpy")
    server = start_server(tmp_path, files=files_on(backend))
    try:
        key = create_key(server, "alice")
        run = nbtrack.init(
            project="media", name="pictures", base_url=server.url, api_key=key, dir=str(tmp_path / "c")
        )
        pixels = np.zeros((48, 64, 3), dtype=np.uint8)
        pixels[:, :32, 0] = 255
        for step in range(3):
            pixels[:, :, 2] = step * 100
            run.log(
                {
                    "loss": 1 / (step + 1),
                    "samples": nbtrack.Image(pixels, caption=f"step {step}"),
                    "weights": nbtrack.Histogram(np.arange(100) * (step + 1), num_bins=16),
                    "preds": nbtrack.Table(columns=["id", "label"], data=[[1, HOSTILE], [2, "dog"]]),
                }
            )
        run.finish()
        page = watched.page
        page.goto(server.url + "/")
        page.fill("#api-key", key)
        page.keyboard.press("Enter")
        page.wait_for_selector(READY)
        watched.open(f"{server.url}/alice/media/runs/{run.id}")
        image = page.locator("figure[data-media='image'][data-key='samples'] img")
        page.wait_for_function(
            "() => document.querySelector(\"figure[data-key='samples'] img\")?.naturalWidth > 0",
            timeout=30_000,
        )
        assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [64, 48]
        assert image.get_attribute("src").startswith("blob:"), "fetched with the key, shown from a blob"
        assert page.locator("figure[data-key='samples'] figcaption").inner_text() == "samples — step 2"
        # A slider goes back through the image's steps (read from the history).
        slider = page.locator("figure[data-key='samples'] input.media-step")
        slider.wait_for()
        assert (slider.get_attribute("max"), slider.input_value()) == ("2", "2")
        last_src = image.get_attribute("src")
        slider.evaluate("input => { input.value = '0'; input.dispatchEvent(new Event('input')); }")
        page.wait_for_function(
            "src => { const img = document.querySelector(\"figure[data-key='samples'] img\");"
            " return img.src !== src && img.complete && img.naturalWidth > 0; }",
            arg=last_src,
            timeout=30_000,
        )
        assert page.locator("figure[data-key='samples'] figcaption").inner_text() == "samples — step 0"
        assert page.locator("figure[data-key='samples'] .media-step-label").inner_text() == "step 0"
        assert page.locator("svg.histogram[data-key='weights']").get_attribute("data-bars") == "16"
        assert page.locator("svg.histogram[data-key='weights'] rect").count() == 16
        table = page.locator("figure[data-media='table'][data-key='preds'] table")
        table.wait_for()
        assert table.locator("tbody td").all_inner_texts() == ["1", HOSTILE, "2", "dog"]
        # The summary table leaves the media to their section.
        assert page.locator("table.kv th", has_text="samples").count() == 0
        watched.shot("media")
    finally:
        server.stop()
    assert [e for e in watched.errors if "status of 401" not in e] == []
    assert watched.dialogs == []


def test_a_notebook_runs_attempts_are_drawn_as_series_of_their_own(seeded: Seeded, watched: Watched) -> None:
    page = watched.open(f"{seeded.server.url}/local/notebook/runs/rerun")
    charts = _charts(page)
    assert sorted(charts) == ["loss"], "neither _cell nor _attempt is a metric"
    assert charts["loss"]["series"] == 2 and charts["loss"]["points"] == 12, charts
    assert page.locator("ul.legend li").all_inner_texts() == ["attempt 1", "attempt 2"]
    assert page.locator("section[aria-labelledby='alerts-title']").is_hidden()  # a run without alerts
    watched.shot("attempts")
    assert not watched.errors, watched.errors

"""The notebook's explorer: what its widgets get (the runs table, the comparison), their static
snapshots, bad input, and the same views from a tracking server; over real stores, a real
`nbtrack server` and, for `%nbtrack show`, a real kernel."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack import jsonutil
from nbtrack.api import Api
from nbtrack.errors import UsageError
from nbtrack.extension import explorer_data
from nbtrack.extension.explorer import compare_widget, runs_widget
from nbtrack.extension.explorer_data import CHART_POINTS, MAX_COMPARED, comparison, resolve_runs, runs_table
from nbtrack.extension.explorer_snapshot import html_snapshot, text_snapshot
from nbtrack.settings import DEFAULT_ENTITY
from nbtrack.store import Store
from tests import serving
from tests.test_kernel import Kernel

server = serving.server
ENTITY = DEFAULT_ENTITY  # what a server in open mode reads as, and local runs are stored under


def write_run(
    store: Store,
    run_id: str,
    name: str,
    *,
    project: str = "sweep",
    config: dict[str, Any],
    summary: dict[str, Any],
    rows: list[dict[str, Any]],
    created_at: float = 100.0,
) -> None:
    store.upsert_run(ENTITY, project, run_id, display_name=name, config=config, created_at=created_at)
    for offset in range(0, len(rows), 10_000):
        batch = rows[offset : offset + 10_000]
        store.write_history(ENTITY, project, run_id, offset, [jsonutil.dumps_str(row) for row in batch])
    store.write_summary(ENTITY, project, run_id, summary)
    store.finish_run(ENTITY, project, run_id, state="finished", exit_code=0)


def fill(root: Path) -> Path:
    """Two runs of "sweep" (loss and acc logged, acc kept as its max) and one of "other"."""
    with Store.at_root(root) as store:
        runs = (("r1", "lr=0.1", 0.1, 100.0, 0.9894), ("r2", "lr=0.01", 0.01, 200.0, 0.3874))
        for run_id, name, lr, created, best in runs:
            rows = [
                {"_step": s, "loss": math.exp(-lr * s), "acc": 1 - math.exp(-lr * s)}
                | ({"only_" + run_id: s} if s % 2 else {})
                for s in range(50)
            ]
            write_run(
                store,
                run_id,
                name,
                config={"lr": lr, "epochs": 3},
                summary={"loss": rows[-1]["loss"], "acc": {"max": best}},
                rows=rows,
                created_at=created,
            )
        write_run(
            store, "o1", "other-run", project="other", config={}, summary={}, rows=[{"_step": 0, "x": 1}]
        )
    return root


@pytest.fixture
def api(root: Path) -> Iterator[Api]:
    with Api(dir=fill(root)) as opened:
        yield opened


# ---- the runs table ----------------------------------------------------------------------------


def test_the_runs_table_lists_display_names_newest_first_with_summaries_as_elsewhere(api: Api) -> None:
    view = runs_table(api, "sweep")
    assert view["kind"] == "runs" and view["message"] == ""
    assert [row["name"] for row in view["rows"]] == ["lr=0.01", "lr=0.1"]
    labels = [(c["group"], c["key"]) for c in view["columns"]]
    assert labels[:5] == [("", "name"), ("", "state"), ("", "created"), ("", "runtime"), ("", "rows")]
    assert ("summary", "acc") in labels and ("config", "lr") in labels
    cells = dict(zip(labels, view["rows"][1]["cells"], strict=True))
    assert cells[("summary", "acc")] == "max 0.9894"  # a kept summary reads as everywhere else
    assert cells[("config", "lr")] == "0.1" and cells[("", "rows")] == "50"
    # The config key that tells the runs apart comes before the one they share.
    assert labels.index(("config", "lr")) < labels.index(("config", "epochs"))


def test_a_stable_table_leaves_the_clock_out(api: Api) -> None:
    view = runs_table(api, "sweep", stable=True)
    keys = [c["key"] for c in view["columns"]]
    assert "created" not in keys and "runtime" not in keys
    assert all(len(row["cells"]) == len(keys) for row in view["rows"])


def test_an_unknown_project_is_a_usage_error_naming_it(api: Api) -> None:
    with pytest.raises(UsageError, match=r"no project 'swep' under .*; projects there: other, sweep"):
        runs_table(api, "swep")
    with pytest.raises(UsageError, match="is not a project path"):
        runs_table(api, "a/b/c")


def test_a_project_without_runs_says_so(api: Api) -> None:
    api.run("other/o1").delete()
    view = runs_table(api, "other")
    assert view["rows"] == [] and view["message"] == "project 'other' has no runs"
    assert text_snapshot(view) == "project other — 0 runs: project 'other' has no runs"


def test_a_big_project_shows_its_newest_runs_and_counts_the_rest(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(explorer_data, "MAX_TABLE_ROWS", 1)
    view = runs_table(api, "sweep", stable=True)
    assert [row["name"] for row in view["rows"]] == ["lr=0.01"] and view["omitted"] == 1
    text = text_snapshot(view)
    assert text.startswith("project sweep — 2 runs\n") and text.endswith("\n(+1 older runs)")


def test_a_long_value_is_cut_with_an_ellipsis(root: Path) -> None:
    with Store.at_root(root) as store:
        write_run(store, "x", "long", config={"notes": "word " * 100}, summary={}, rows=[])
    with Api(dir=root) as api:
        cell = runs_table(api, "sweep")["rows"][0]["cells"][-1]
    assert len(cell) == explorer_data.MAX_CELL_CHARS and cell.endswith("…")


# ---- the comparison ----------------------------------------------------------------------------


def test_the_comparison_sets_values_side_by_side_and_marks_differences(api: Api) -> None:
    view = comparison(resolve_runs(api, ["sweep/r1", "r2"]))
    assert [run["name"] for run in view["runs"]] == ["lr=0.1", "lr=0.01"]
    fields = {(f["section"], f["key"]): (f["values"], f["differs"]) for f in view["fields"]}
    assert fields[("config", "epochs")] == (["3", "3"], False)
    assert fields[("config", "lr")] == (["0.1", "0.01"], True)
    assert fields[("summary", "acc")] == (["max 0.9894", "max 0.3874"], True)


def test_one_chart_per_shared_metric_with_a_series_per_run(api: Api) -> None:
    view = comparison(resolve_runs(api, ["sweep/r1", "sweep/r2"]))
    # only_r1 and only_r2 are each in one run: no chart.
    assert [chart["key"] for chart in view["charts"]] == ["loss", "acc"]
    for chart in view["charts"]:
        assert len(chart["series"]) == 2
        assert all(s["xs"] == list(range(50)) for s in chart["series"])
    loss = view["charts"][0]["series"]
    assert loss[0]["lo"][10] == pytest.approx(math.exp(-1.0)) and loss[1]["lo"][10] == pytest.approx(
        math.exp(-0.1)
    )


def test_stored_run_chart_gives_step_min_max_points_of_the_keys_asked(api: Api) -> None:
    run = api.run("sweep/r1")
    assert sorted(run.chart()) == ["acc", "loss", "only_r1"]
    loss = run.chart("loss", points=10)
    assert list(loss) == ["loss"] and len(loss["loss"]) <= 10
    # 50 steps in groups of 5: the first is [its first step, its min, its max].
    assert loss["loss"][0] == [0, pytest.approx(math.exp(-0.4)), 1.0]


def test_charts_past_the_cap_are_counted(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explorer_data, "MAX_CHARTS", 1)
    view = comparison(resolve_runs(api, ["sweep/r1", "sweep/r2"]))
    assert [chart["key"] for chart in view["charts"]] == ["loss"] and view["charts_omitted"] == 1
    assert text_snapshot(view).splitlines()[-1] == "charts (2 lines each): loss (+1 more)"


def test_a_long_run_comes_downsampled_with_its_spike(root: Path) -> None:
    """60,000 rows (more than the store reads as lines: the rollup answers) become at most
    CHART_POINTS points per run, and the one spike is still the chart's maximum."""
    with Store.at_root(root) as store:
        rows = [{"_step": s, "loss": 1.0 / (s + 1)} for s in range(60_000)]
        rows[41_234]["loss"] = 500.0
        write_run(store, "long", "long-run", config={}, summary={}, rows=rows)
        write_run(store, "short", "short-run", config={}, summary={}, rows=rows[:100])
    with Api(dir=root) as api:
        view = comparison(resolve_runs(api, ["sweep/long", "sweep/short"]))
    long_series = view["charts"][0]["series"][0]
    assert 100 < len(long_series["xs"]) <= CHART_POINTS
    assert max(long_series["hi"]) == 500.0
    assert long_series["xs"][0] == 0 and long_series["xs"][-1] > 59_000


def test_runs_not_there_are_usage_errors_naming_them(api: Api, root: Path) -> None:
    with pytest.raises(UsageError, match=r"no run 'nope' in project 'sweep'"):
        resolve_runs(api, ["sweep/r1", "sweep/nope"])
    with pytest.raises(UsageError, match=r"no run 'zz' under .*'project/run_id'"):
        resolve_runs(api, ["zz"])
    with pytest.raises(UsageError, match="needs the runs to compare"):
        resolve_runs(api, [])
    with pytest.raises(UsageError, match=f"at most {MAX_COMPARED} runs"):
        resolve_runs(api, ["r1"] * (MAX_COMPARED + 1))
    with pytest.raises(UsageError, match="not 3"):
        resolve_runs(api, [3])  # type: ignore[list-item]
    with Store.at_root(root) as store:
        write_run(store, "r1", "twin", project="other", config={}, summary={}, rows=[])
    with pytest.raises(UsageError, match=rf"run id 'r1' is in more than one project .*'{ENTITY}/other/r1'"):
        resolve_runs(api, ["r1"])


def test_compare_takes_stored_runs_from_the_api(root: Path) -> None:
    fill(root)
    with Api(dir=root) as api:
        runs = api.runs("sweep")
    widget = compare_widget(*runs)
    assert [run["path"] for run in widget.view["runs"]] == [f"{ENTITY}/sweep/r2", f"{ENTITY}/sweep/r1"]


# ---- snapshots and the widget -----------------------------------------------------------------


def test_the_snapshots_show_the_table_and_an_svg_line_per_run(api: Api) -> None:
    view = comparison(resolve_runs(api, ["sweep/r1", "sweep/r2"]))
    text = text_snapshot(view)
    assert text.splitlines()[0] == "compare lr=0.1 vs lr=0.01"
    assert re.search(r"^≠\s+config\.lr\s+0\.1\s+0\.01$", text, re.M)
    assert re.search(r"^\s+config\.epochs\s+3\s+3$", text, re.M)
    assert text.splitlines()[-1] == "charts (2 lines each): loss, acc"
    page = html_snapshot(view)
    charts = re.findall(r"<figure.*?</figure>", page)
    assert len(charts) == 2 and all(chart.count("<polyline") == 2 for chart in charts)
    assert text_snapshot(view) == text and html_snapshot(view) == page  # nothing random in them


def test_user_strings_are_escaped_in_the_html_snapshot(root: Path) -> None:
    with Store.at_root(root) as store:
        write_run(store, "x", "<script>x</script>", config={"<b>": "<i>"}, summary={}, rows=[])
    with Api(dir=root) as api:
        pages = [html_snapshot(runs_table(api, "sweep")), html_snapshot(comparison(resolve_runs(api, ["x"])))]
    for page in pages:
        assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
        assert "<i>" not in page


def test_the_widget_carries_its_view_and_both_snapshots(root: Path) -> None:
    fill(root)
    widget = runs_widget("sweep", dir=root)
    data, _metadata = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"].startswith("project sweep — 2 runs\nname ")
    assert "<table" in data["text/html"] and "lr=0.01" in data["text/html"]
    assert "export default" in widget._esm and "drawLineChart" in widget._esm  # the shared chart code


def test_show_outside_ipython_prints_the_text_snapshot(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(root)
    nbtrack.show("sweep", dir=root)
    nbtrack.compare("sweep/r1", "sweep/r2", dir=root)
    out = capsys.readouterr().out
    assert "project sweep — 2 runs" in out and "compare lr=0.1 vs lr=0.01" in out


# ---- a tracking server ----------------------------------------------------------------------------


def test_the_same_views_from_a_tracking_server(server: serving.ServerProcess) -> None:
    assert server.dir is not None
    fill(server.dir)
    with Api(dir=server.dir) as api:
        local_table = runs_table(api, "sweep")
        local = comparison(resolve_runs(api, ["sweep/r1", "sweep/r2"]))
    remote_table = runs_widget("sweep", base_url=server.url).view
    remote = compare_widget("sweep/r1", "sweep/r2", base_url=server.url).view
    assert remote_table["source"] == f"on {server.url}"
    assert {**remote_table, "source": ""} == {**local_table, "source": ""}
    assert remote == local
    with pytest.raises(UsageError, match=f"no run 'nope' in project 'sweep' on {re.escape(server.url)}"):
        compare_widget("sweep/nope", base_url=server.url)


# ---- %nbtrack show in a real kernel ---------------------------------------------------------------


def test_magic_show_displays_the_explorer_widget_in_a_real_kernel(tmp_path: Path, root: Path) -> None:
    fill(root)
    kernel = Kernel(tmp_path, root)
    try:
        reply, _ = kernel.execute("%load_ext nbtrack")
        assert reply["status"] == "ok"
        reply, messages = kernel.execute("%nbtrack show sweep")
        assert reply["status"] == "ok", reply
        shown = [m["content"]["data"] for m in messages if m["msg_type"] == "display_data"]
        assert len(shown) == 1
        assert "application/vnd.jupyter.widget-view+json" in shown[0]
        assert shown[0]["text/plain"].startswith("project sweep — 2 runs")
        opened = [m for m in messages if m["msg_type"] == "comm_open"]
        state = opened[-1]["content"]["data"]["state"]
        assert [row["name"] for row in state["view"]["rows"]] == ["lr=0.01", "lr=0.1"]
        # A project that is not there: one line naming it, no traceback.
        reply, messages = kernel.execute("%nbtrack show swep")
        errors = [m["content"] for m in messages if m["msg_type"] in ("error", "stream")]
        text = " ".join(e.get("text", "") + e.get("evalue", "") for e in errors)
        assert "no project 'swep'" in text and "Traceback" not in text
    finally:
        kernel.close()

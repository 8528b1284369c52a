"""The live run panel widget, without a kernel: a recording comm stands in for the front-end."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import comm
import pytest
from comm import DummyComm
from IPython.core.formatters import DisplayFormatter

from nbtrack.extension import panel as panel_module
from nbtrack.extension.esm import PANEL_MODULES, bundle_esm, bundle_modules, panel_esm
from nbtrack.extension.panel import RunPanel, panel_details
from nbtrack.extension.panel_limits import (
    MAX_ALERTS,
    MAX_ARTIFACTS,
    MAX_DETAILS,
    MAX_HISTOGRAM_BARS,
    MAX_IMAGE_SRC_CHARS,
    MAX_METRICS,
    MAX_NOTICES,
    MAX_POINTS,
    MAX_SERIES,
    MAX_UPDATE_BYTES,
)
from nbtrack.formatting import downsample_min_max, format_bytes, format_duration, format_number
from nbtrack.proto import nbtrack_pb2 as pb

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WEB = Path(panel_module.__file__).resolve().parents[1] / "web"  # the front end: shared/, widget/, ui/


class RecordingComm(DummyComm):
    """A comm that keeps what the widget would send to the front-end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[dict[str, Any]] = []
        super().__init__(*args, **kwargs)

    def publish_msg(
        self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any
    ) -> None:
        if msg_type == "comm_msg":
            self.sent.append(data)


@pytest.fixture(autouse=True)
def recording_comms(monkeypatch: pytest.MonkeyPatch) -> None:
    # comm.create_comm is the documented replacement point (ipykernel replaces it the same way).
    monkeypatch.setattr(comm, "create_comm", RecordingComm)


def new_panel(**kwargs: Any) -> RunPanel:
    args: dict[str, Any] = {"name": "mnist-1", "run_id": "abc123", "project": "mnist", "entity": "me"}
    return RunPanel(**{**args, **kwargs})


def updates(panel: RunPanel) -> list[dict[str, Any]]:
    sent = panel.comm.sent
    assert all(message["method"] == "update" for message in sent)
    return [message["state"] for message in sent]


def wire_size(message: dict[str, Any]) -> int:
    # What jupyter_client's json_packer puts on the wire: UTF-8, ensure_ascii=False, no NaN.
    return len(json.dumps(message, ensure_ascii=False, allow_nan=False).encode("utf-8"))


def test_set_state_sends_one_message_with_only_the_changed_traits() -> None:
    panel = new_panel()
    panel.set_state(state="running", step=5, metrics={"loss": 1.5})
    assert [set(state) for state in updates(panel)] == [{"state", "step", "metrics"}]

    panel.set_state(state="running", step=5, metrics={"loss": 1.5})  # nothing changed
    assert len(updates(panel)) == 1

    panel.set_state(state="running", step=6, metrics={"loss": 1.5}, runtime=2.0)
    assert updates(panel)[-1] == {"step": 6, "runtime": 2.0}


def test_one_update_stays_under_the_bound_for_a_million_steps_and_40_metrics() -> None:
    steps = list(range(1_000_000))
    values = [math.sin(i / 5000) * 1.234567891 + i * 1e-7 for i in steps]
    keys = [f"train/metric_{i:02d}" for i in range(40)]
    panel = new_panel()
    panel.set_state(
        state="running",
        step=999_999,
        runtime=1234.5,
        metrics={k: values[-1] for k in keys},
        series={k: {"steps": steps, "values": values} for k in keys},
        pending={"rows": 10**6, "bytes": 10**9},
        notices=[f"notice {i}" for i in range(20)],
    )
    [message] = panel.comm.sent
    size = wire_size(message)
    assert size <= MAX_UPDATE_BYTES <= 90_000
    assert size < 30_000, size  # what a realistic run costs, well under the worst case
    assert len(panel.series) == MAX_SERIES and panel.series_omitted == 40 - MAX_SERIES
    assert all(len(s["steps"]) <= MAX_POINTS for s in panel.series.values())


def test_the_bound_holds_for_hostile_keys_and_values() -> None:
    # Longest keys and strings, 4-byte characters, control characters, lone surrogates, huge
    # numbers, NaN: still under the bound and valid strict JSON.
    def hostile(i: int) -> str:
        return f'{i:03d}\x00"\\\ud800' + "😀" * 500

    panel = new_panel()
    lowest = -(2**53)  # the longest step still exact in JavaScript
    panel.set_state(
        state="x" * 1000,
        step=-(10**30),
        runtime=-1.7976931348623157e308,
        metrics={
            hostile(i): (10**400 if i % 20 else math.nan) if i % 10 == 0 else hostile(i) for i in range(500)
        },
        series={
            hostile(i): {
                "steps": [lowest + j for j in range(5000)],
                "values": [-1.23456789e-300 * (1 + j % 7) for j in range(5000)],
            }
            for i in range(100)
        },
        pending={"rows": 2**70, "bytes": 2**70},
        notices=[hostile(i) for i in range(100)],
        details=[hostile(i) for i in range(10)],
        alerts=[{"level": hostile(i), "title": hostile(i), "text": hostile(i)} for i in range(10)],
        artifacts=[
            {
                "role": hostile(i),
                "type": hostile(i),
                "name": hostile(i),
                "version": hostile(i),
                "files": 2**70,
                "bytes": -1,
            }
            for i in range(10)
        ],
        media={
            "image": {
                "key": hostile(1),
                "caption": hostile(2),
                "src": "data:image/png;base64," + "A" * (MAX_IMAGE_SRC_CHARS - 22),
                "width": 10**30,
                "height": -(10**30),
            },
            "histogram": {
                "key": hostile(3),
                "bins": [-1.23456789e-300 * (1 + j) for j in range(513)],
                "values": [1.23456789e300 / (1 + j) for j in range(512)],
            },
        },
    )
    [message] = panel.comm.sent
    assert MAX_UPDATE_BYTES * 0.7 < wire_size(message) <= MAX_UPDATE_BYTES  # the bound is not loose
    assert len(panel.media["histogram"]["values"]) <= MAX_HISTOGRAM_BARS
    assert len(panel.metrics) == MAX_METRICS and panel.metrics_omitted == 500 - MAX_METRICS
    assert len(panel.notices) == MAX_NOTICES and len(panel.details) == MAX_DETAILS
    assert len(panel.alerts) == MAX_ALERTS and {a["level"] for a in panel.alerts} == {"INFO"}
    assert len(panel.artifacts) == MAX_ARTIFACTS and panel.artifacts_omitted == 10 - MAX_ARTIFACTS
    assert {a["role"] for a in panel.artifacts} == {"logged"} and panel.artifacts[0]["bytes"] == 0


def test_downsampling_keeps_the_extremes_and_the_last_point() -> None:
    steps = list(range(200_000))
    values = [math.cos(i / 3000) for i in steps]
    values[123_457] = 42.0
    values[54_321] = -42.0
    values[-1] = 7.5
    panel = new_panel()
    panel.set_state(series={"loss": {"steps": steps, "values": values}})
    loss = panel.series["loss"]
    assert len(loss["steps"]) <= MAX_POINTS
    assert loss["steps"][-1] == 199_999 and loss["values"][-1] == 7.5
    assert loss["steps"][0] == 0
    assert loss["values"][loss["steps"].index(123_457)] == 42.0
    assert loss["values"][loss["steps"].index(54_321)] == -42.0
    assert loss["steps"] == sorted(loss["steps"])


def test_downsample_drops_non_finite_values_and_passes_short_series_through() -> None:
    assert downsample_min_max([1, 2, 3, 4], [1.0, math.nan, None, 4], 10) == ([1, 4], [1.0, 4])
    assert downsample_min_max([0, 1, 2, 3, 4, 5, 6], [0, 9, 1, 1, 1, -9, 2], 4) == (
        [0, 1, 5, 6],
        [0, 9, -9, 2],
    )
    assert downsample_min_max([1, 2], [5, 6], 1) == ([2], [6])


def test_series_follow_the_metrics_order_and_hide_reserved_keys() -> None:
    panel = new_panel()
    series = {k: {"steps": [0, 1], "values": [1.0, 2.0]} for k in ("b", "_step", "a", "c")}
    panel.set_state(metrics={"a": 1, "b": 2, "_runtime": 3.0}, series=series)
    assert list(panel.metrics) == ["a", "b"]
    assert list(panel.series) == ["a", "b", "c"]


def test_the_mime_bundle_has_the_widget_view_text_and_html() -> None:
    panel = new_panel(url="http://127.0.0.1:8080/me/mnist/runs/abc123")
    panel.set_state(state="finished", step=1234, runtime=12.34, metrics={"loss": 0.123456, "acc": 0.97})
    data, _metadata = panel._repr_mimebundle_()
    assert data[WIDGET_VIEW]["model_id"] == panel.model_id
    assert data["text/plain"] == (
        "run mnist-1 (abc123) project mnist — finished, step 1234, 12.3 s\n"
        "  loss  0.1235\n"
        "  acc   0.97\n"
        "  http://127.0.0.1:8080/me/mnist/runs/abc123"
    )
    assert "mnist-1" in data["text/html"] and "<svg" not in data["text/html"]  # no series yet
    assert 'href="http://127.0.0.1:8080/me/mnist/runs/abc123"' in data["text/html"]

    formatted, _ = DisplayFormatter().format(panel)  # type: ignore[no-untyped-call]  # what IPython itself puts in the output
    assert formatted["text/plain"] == panel.text_summary() and WIDGET_VIEW in formatted


def test_a_closed_panel_still_displays_its_snapshot() -> None:
    panel = new_panel()
    panel.set_state(state="finished", step=3)
    panel.close()
    formatted, _ = DisplayFormatter().format(panel)  # type: ignore[no-untyped-call]
    assert WIDGET_VIEW not in formatted
    assert formatted["text/plain"] == panel.text_summary()
    assert formatted["text/html"] == panel.html_summary()


def test_html_escapes_every_user_string() -> None:
    evil = "<img src=x onerror=alert(1)>"
    panel = new_panel(name=evil, run_id=evil, project=evil, entity=evil, url="javascript:alert(1)")
    panel.set_state(
        state=evil,
        metrics={evil: evil},
        series={evil: {"steps": [0, 1, 2], "values": [3.0, 1.0, 2.0]}},
        notices=[evil],
    )
    snapshot = panel.html_summary()
    assert "<img" not in snapshot and "onerror=alert(1)>" not in snapshot
    assert "&lt;img src=x onerror=alert(1)&gt;" in snapshot
    assert "javascript:" not in snapshot and panel.header["url"] is None
    assert "<svg" in snapshot  # the sparkline of the (escaped) key


def test_deterministic_text_has_no_wall_clock_values() -> None:
    def snapshot(deterministic: bool, runtime: float, rows: int) -> tuple[str, str]:
        panel = new_panel(deterministic=deterministic)
        panel.set_state(
            state="finishing", step=10, runtime=runtime, metrics={"loss": 0.5}, pending={"rows": rows}
        )
        return panel.text_summary(), panel.html_summary()

    text, snapshot_html = snapshot(False, 12.34, 7)
    assert "12.3 s" in text and "12.3 s" in snapshot_html and "pending upload: 7 rows" in text
    first = snapshot(True, 12.34, 7)
    assert first == snapshot(True, 99.0, 0)
    assert "12.3" not in first[0] and "s\n" not in first[0] and "pending" not in first[0]
    assert first[0].startswith("run mnist-1 project mnist — finishing, step 10\n")  # random ids left out
    assert "abc123" not in first[0] and "abc123" not in first[1]


def test_formatting_rules() -> None:
    assert [format_number(v) for v in (1234, 2.0, 0.123456, 123456.7, 0.00012345, math.nan, True, None)] == [
        "1234",
        "2",
        "0.1235",
        "1.23e+5",
        "1.23e-4",
        "nan",
        "true",
        "null",
    ]
    assert [format_duration(s) for s in (12.34, 245, 7380)] == ["12.3 s", "4 min 05 s", "2 h 03 min"]
    assert [format_bytes(n) for n in (512, 3400, 12_345_678)] == ["512 B", "3.4 kB", "12 MB"]


# -- the front-end module ----------------------------------------------------------------------

CHART = "export function a(x) {\n  return x;\n}\nexport const b = 2;\nfunction helper() {}\n"
PANEL = 'import { a, b } from "./chart.js";\n\nexport default { render() { return () => a(b); } };\n'


def test_bundle_inlines_chart_and_drops_the_import() -> None:
    bundled = bundle_esm(CHART, PANEL)
    assert "import" not in bundled
    assert "export function" not in bundled and "export const" not in bundled
    assert "function a(x)" in bundled and "const b = 2;" in bundled
    assert bundled.count("export default") == 1
    multiline = 'import {\n  a,\n  b,\n} from "./chart.js";\nexport default {};\n'
    assert "import" not in bundle_esm(CHART, multiline)


@pytest.mark.parametrize(
    ("chart", "panel", "error"),
    [
        (CHART + "export default {};\n", PANEL, "may only export"),
        (CHART + "export { helper };\n", PANEL, "may only export"),
        ('import x from "./y.js";\n' + CHART, PANEL, "must not import"),
        (CHART, PANEL + 'import y from "./other.js";\n', 'from "./chart.js" only'),
        (CHART, "export default {};\n", "exactly one"),
        (CHART, PANEL.replace("a, b", "a as c"), "plain names"),
        (CHART, PANEL.replace("a, b", "a, zzz"), "does not export ['zzz']"),
        (CHART, PANEL + "function helper() {}\n", "both declare ['helper']"),
    ],
)
def test_bundle_refuses_what_it_cannot_inline_safely(chart: str, panel: str, error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("[", r"\[").replace("(", r"\(")):
        bundle_esm(chart, panel)


def test_the_shipped_module_is_the_bundle_of_the_js_sources() -> None:
    shipped = new_panel()._esm
    assert shipped == panel_esm()
    assert shipped == bundle_modules([(name, (WEB / name).read_text()) for name in PANEL_MODULES])
    assert "function drawLineChart(" in shipped, "the panel draws with the UI's chart module"


def test_the_module_is_bundled_when_a_panel_needs_it_not_at_import() -> None:
    script = (
        "import nbtrack.extension.panel\n"
        "from nbtrack.extension.esm import panel_esm\n"
        "print(panel_esm.cache_info().misses)\n"
    )
    root = str(WEB.parents[1])  # this checkout's nbtrack first, as tests/test_imports.py does
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


def test_imports_resolve_from_each_modules_folder() -> None:
    """Paths are places under one root; a relative import means what a browser would resolve."""
    bundled = bundle_modules(
        [
            ("shared/chart.js", CHART),
            ("shared/chart_svg.js", SVG),
            ("widget/panel.js", PANEL.replace("./chart.js", "../shared/chart.js")),
        ]
    )
    assert "import" not in bundled and "// shared/chart.js, inlined" in bundled
    same_folder_import = [
        ("shared/chart.js", CHART),
        ("shared/chart_svg.js", SVG),
        ("widget/panel.js", PANEL),
    ]
    allowed = 'may import from "../shared/chart.js", "../shared/chart_svg.js" only'
    with pytest.raises(ValueError, match=re.escape(allowed)):
        bundle_modules(same_folder_import)


SVG = 'import { a } from "./chart.js";\nexport function draw() {\n  return a(1);\n}\n'


def test_a_chain_of_modules_is_inlined_in_order() -> None:
    bundled = bundle_modules(
        [
            ("chart.js", CHART),
            ("chart_svg.js", SVG),
            ("panel.js", PANEL + 'import { draw } from "./chart_svg.js";\n'),
        ]
    )
    assert "import" not in bundled and "export function" not in bundled
    assert bundled.index("function a(x)") < bundled.index("function draw()") < bundled.index("export default")


@pytest.mark.parametrize(
    ("modules", "error"),
    [
        (
            [("chart.js", CHART), ("chart_svg.js", SVG + "export default {};\n"), ("panel.js", PANEL)],
            "may only export",
        ),
        ([("chart_svg.js", SVG), ("chart.js", CHART), ("panel.js", PANEL)], "must not import"),
        (
            [("chart.js", CHART), ("chart_svg.js", SVG.replace("{ a }", "{ b, zzz }")), ("panel.js", PANEL)],
            "zzz",
        ),
        (
            [("chart.js", CHART), ("chart_svg.js", SVG + SVG.split("\n")[0] + "\n"), ("panel.js", PANEL)],
            "exactly one",
        ),
        (
            [("chart.js", CHART), ("chart_svg.js", SVG + "const b = 3;\n"), ("panel.js", PANEL)],
            "both declare ['b']",
        ),
        (
            [
                ("chart.js", CHART),
                ("chart_svg.js", SVG),
                ("panel.js", PANEL + 'import { draw } from "./later.js";\n'),
            ],
            "only",
        ),
    ],
)
def test_a_chain_refuses_what_it_cannot_inline_safely(modules: list[tuple[str, str]], error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        bundle_modules(modules)


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def run_node(script: str, tmp_path: Path) -> Any:
    path = tmp_path / "check.mjs"
    path.write_text(script)
    done = subprocess.run(["node", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@needs_node
def test_the_bundle_loads_as_one_module_in_node(tmp_path: Path) -> None:
    (tmp_path / "widget.mjs").write_text(panel_esm())
    result = run_node(
        'import widget from "./widget.mjs";\nconsole.log(JSON.stringify(typeof widget.render));', tmp_path
    )
    assert result == "function"


@needs_node
def test_python_and_javascript_follow_the_same_rules(tmp_path: Path) -> None:
    steps = list(range(1000))
    values = [math.sin(i / 37) * (i % 17) for i in steps]
    numbers = [0, 7, -3, 2.0, 0.123456, 12.3456, 999.91, -0.5, 123456.7, 0.00012345, 1e20, 3.25e-7, 99999.9]
    seconds = [0.0, 12.34, 59.9, 61, 245, 3599, 3600, 7380.5]
    sizes = [0, 512, 999, 1000, 3400, 12_345_678, 9.96e9]
    script = (
        f'import * as chart from "{(WEB / "shared" / "chart.js").as_uri()}";\n'
        f"const steps = {json.dumps(steps)}, values = {json.dumps(values)};\n"
        "console.log(JSON.stringify({\n"
        "  sampled: [5, 10, 101].map((n) => chart.downsampleMinMax(steps, values, n)),\n"
        f"  numbers: {json.dumps(numbers)}.map(chart.formatNumber),\n"
        f"  seconds: {json.dumps(seconds)}.map(chart.formatDuration),\n"
        f"  sizes: {json.dumps(sizes)}.map(chart.formatBytes),\n"
        "}));\n"
    )
    js = run_node(script, tmp_path)
    sampled = [downsample_min_max(steps, values, n) for n in (5, 10, 101)]
    assert js["sampled"] == [{"steps": s, "values": v} for s, v in sampled]
    assert js["numbers"] == [format_number(v) for v in numbers]
    assert js["seconds"] == [format_duration(s) for s in seconds]
    assert js["sizes"] == [format_bytes(n) for n in sizes]


def test_the_js_files_ship_inside_the_package() -> None:
    import importlib.resources

    web = importlib.resources.files("nbtrack") / "web"
    assert (web / "widget" / "panel.js").is_file() and (web / "shared" / "chart.js").is_file()
    assert (web / "ui" / "index.html").is_file()


def test_details_name_the_cells_of_the_newest_steps_and_the_machines_load() -> None:
    live = pb.LiveResult(
        system_json=b'{"system.cpu": 12.4, "system.memory": 40.0, '
        b'"system.proc.cpu": 95.2, "system.proc.memory.rss_mb": 1536.0}'
    )
    live.cells.add(execution_count=3, first_step=0, last_step=0, attempt=0, rows=1)
    live.cells.add(execution_count=12, first_step=200, last_step=340, attempt=0, rows=141)
    live.cells.add(execution_count=14, first_step=0, last_step=99, attempt=1, rows=100)
    assert panel_details(live) == [
        "step 0 from cell [3]; steps 200-340 from cell [12]; steps 0-99 from cell [14] (attempt 2)",
        "CPU 12% · memory 40% · this kernel 95% CPU, 1.5 GB",
    ]
    assert panel_details(pb.LiveResult()) == []  # a script's run: neither


def test_alerts_show_in_the_panel_and_its_snapshots_newest_last() -> None:
    panel = new_panel()
    panel.set_state(state="finished", step=3)
    plain, html = panel.text_summary(), panel.html_summary()
    panel.set_state(alerts=[])  # no alerts: the snapshots are those of a panel without any
    assert (panel.text_summary(), panel.html_summary()) == (plain, html)

    raised = [{"level": "INFO", "title": f"t{n}", "text": "", "time": 1.0} for n in range(MAX_ALERTS + 2)]
    raised[-1] = {"level": "ERROR", "title": "<b>nan</b>", "text": "x" * 1000, "time": 2.0}
    panel.set_state(alerts=raised)
    assert [a["title"] for a in panel.alerts] == [f"t{n}" for n in range(2, MAX_ALERTS + 1)] + ["<b>nan</b>"]
    assert set(panel.alerts[-1]) == {"level", "title", "text"} and len(panel.alerts[-1]["text"]) <= 80
    text = panel.text_summary()
    assert f"  INFO alert: t{MAX_ALERTS - 1}" in text and "  ERROR alert: <b>nan</b> — xxx" in text
    snapshot = panel.html_summary()
    assert "<b>nan</b>" not in snapshot and "&lt;b&gt;nan&lt;/b&gt;" in snapshot and "ERROR</b>" in snapshot


def test_artifacts_list_in_the_panel_and_its_snapshots() -> None:
    # The same cases as tests/js/panel.test.mjs's artifactWords test: the widget and the
    # snapshots say the same.
    panel = new_panel()
    panel.set_state(state="running", step=3)
    plain, html = panel.text_summary(), panel.html_summary()
    panel.set_state(artifacts=[])  # none: the snapshots are those of a run without artifacts
    assert (panel.text_summary(), panel.html_summary()) == (plain, html)

    panel.set_state(
        artifacts=[
            {
                "role": "logged",
                "type": "dataset",
                "name": "mnist",
                "version": "v1",
                "files": 3,
                "bytes": 12_000_000,
            },
            {
                "role": "logged",
                "type": "model",
                "name": "<b>net</b>",
                "version": None,
                "files": 1,
                "bytes": 512,
            },
            {"role": "used", "type": "dataset", "name": "mnist", "version": "v0", "files": 2, "bytes": 3400},
        ]
    )
    text = panel.text_summary()
    assert "  logged dataset mnist:v1 · 3 files, 12 MB" in text
    assert "  logged model <b>net</b> (not stored yet) · 1 file, 512 B" in text
    assert "  used dataset mnist:v0 · 2 files, 3.4 kB" in text
    snapshot = panel.html_summary()
    assert "<b>net</b>" not in snapshot and "&lt;b&gt;net&lt;/b&gt; (not stored yet)" in snapshot

    many = [
        {"role": "used", "type": "t", "name": f"a{i}", "version": "v0", "files": 1, "bytes": 1}
        for i in range(8)
    ]
    panel.set_state(artifacts=many)
    assert [a["name"] for a in panel.artifacts] == [f"a{i}" for i in range(3, 8)]  # the newest
    assert "(+3 more artifacts)" in panel.text_summary() and "+3 more artifacts" in panel.html_summary()

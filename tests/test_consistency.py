"""The panel, its static snapshot, run.status(), the run page (through the server's GraphQL) and
nbtrack's notices say the same thing: "step N" is the last step logged, attempts are counted from
1 by people, the header shows an id equal to the name once, and a notebook's run names its notebook.
Each test drives a real kernel or a real run and asserts what a person reads."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack.extension.panel import RunPanel
from nbtrack.sdk.start_records import UNKNOWN_NOTEBOOK
from tests.serving import Client, ServerProcess, free_port, start_server
from tests.test_cells import printed, run_cell
from tests.test_kernel import Kernel, panel_updates

PROJECT = "consistency"


@pytest.fixture
def kernel(tmp_path: Path, root: Path) -> Iterator[Kernel]:
    k = Kernel(tmp_path, root)
    yield k
    k.close()


def serve(root: Path, tmp_path: Path) -> ServerProcess:
    """A real `nbtrack server` on the kernel's own store (open mode: no key made)."""
    port = free_port()
    server = ServerProcess(
        url=f"http://127.0.0.1:{port}",
        dir=root,
        db_url=None,
        args=[
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(root),
            "--files",
            str(tmp_path / "files"),
        ],
        log_path=tmp_path / "server.log",
        cwd=tmp_path,
    )
    server.start()
    return server


def final_snapshot(messages: list[dict[str, Any]]) -> dict[str, Any]:
    finals = [m for m in messages if m["msg_type"] == "update_display_data"]
    assert finals, [m["msg_type"] for m in messages]
    return dict(finals[-1]["content"]["data"])


def test_panel_snapshot_status_and_run_page_mean_the_same_step(
    kernel: Kernel, root: Path, tmp_path: Path
) -> None:
    run_cell(kernel, "%load_ext nbtrack")
    _, messages = run_cell(
        kernel,
        f"run = nbtrack.init(project={PROJECT!r}, name='six-hundred')\n"
        "for i in range(600):\n"
        "    run.log({'loss': 1 / (i + 1)})\n"
        "status = run.status()\n"
        "print(run.id, status.step, status.rows_logged)",
    )
    run_id, status_step, status_rows = printed(messages).split()
    assert (status_step, status_rows) == ("599", "600")  # run.status(): steps 0-599 are 600 rows

    _, messages = run_cell(kernel, "run.finish()")
    states = [u["content"]["data"]["state"] for u in panel_updates(messages)]
    assert [s["step"] for s in states if "step" in s][-1] == 599
    assert [s["rows"] for s in states if "rows" in s][-1] == 600
    snapshot = final_snapshot(messages)
    assert "finished, step 599, 600 rows" in snapshot["text/plain"]  # what nbconvert/nbval keep
    assert "step 599 · 600 rows" in snapshot["text/html"]
    assert "step 600" not in snapshot["text/plain"] + snapshot["text/html"]

    server = serve(root, tmp_path)
    try:
        shown = Client(server.url).run(PROJECT, run_id, "lastStep historyLineCount")
    finally:
        server.stop()
    # The run page's header reads these two fields: "Step 599 · Rows 600".
    assert (shown["lastStep"], shown["historyLineCount"]) == (599, 600)


def test_a_panel_before_its_first_row_says_so() -> None:
    panel = RunPanel(name="fresh", run_id="r1", project="p", entity="local")
    assert "running, no rows yet" in (panel.set_state(state="running") or panel.text_summary())
    assert "no rows yet" in panel.html_summary()


def test_the_header_shows_an_id_equal_to_the_name_once(kernel: Kernel) -> None:
    run_cell(kernel, "%load_ext nbtrack")
    run_cell(kernel, f"run = nbtrack.init(project={PROJECT!r}, id='same-words', name='same-words')")
    _, messages = run_cell(kernel, "run.log({'x': 1})\nrun.finish()")
    text = final_snapshot(messages)["text/plain"]
    assert text.startswith(f"run same-words project {PROJECT} — finished"), text
    assert text.count("same-words") == 1

    # A run without a name gets a readable one; the header shows it and the id, each once.
    run_cell(kernel, f"other = nbtrack.init(project={PROJECT!r}, id='abc123')")
    _, messages = run_cell(kernel, "other.log({'x': 1})\nother.finish()\nprint(other.name)")
    name = printed(messages).strip()
    text = final_snapshot(messages)["text/plain"]
    assert name != "abc123" and text.startswith(f"run {name} (abc123) project {PROJECT}"), text


def test_step_back_and_attempt_notices_name_the_last_step_and_count_attempts_from_1(kernel: Kernel) -> None:
    run_cell(kernel, "%load_ext nbtrack")
    run_cell(kernel, f"run = nbtrack.init(project={PROJECT!r})")
    loop = "for step in range(4):\n    run.log({'loss': 1 / (step + 1)}, step=step)"
    run_cell(kernel, loop)
    again, _ = run_cell(kernel, loop)  # a re-run cell: its steps go back
    _, messages = run_cell(kernel, "run.log({'x': 1}, step=5)\nrun.log({'x': 2}, step=5)")
    _, messages = run_cell(kernel, "run.finish()\nprint(*run.notices, sep='\\n')")
    notices = printed(messages)
    assert f"attempt 2 started at step 0: cell [{again}] went back from step 3 (a re-run cell)" in notices
    assert "step 5 is not after step 5, the last step logged" in notices
    assert "_attempt" not in notices and "attempt 1 " not in notices  # one numbering, from 1


def test_a_scripts_step_back_warning_names_the_last_step(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with nbtrack.init(project=PROJECT, dir=root) as run:
        run.log({"x": 1}, step=5)
        run.log({"x": 2}, step=3)
        run.log({"y": 0}, step=7, commit=False)
        run.log({"y": 1}, step=6)
    said = "\n".join(r.getMessage() for r in caplog.records if r.name == "nbtrack")  # a script's warnings
    assert "step 3 is not after step 5, the last step logged" in said
    assert "step 6 is below step 7, the step of the row still being built (commit=False)" in said
    assert "current step" not in said


def test_a_notebook_run_records_its_notebook_as_its_program(
    kernel: Kernel, root: Path, tmp_path: Path
) -> None:
    run_cell(kernel, "%load_ext nbtrack")
    # What Jupyter sets (from $JPY_SESSION_NAME) and VS Code sets; a kernel knowing neither.
    cases = {
        "jupyter": ("__session__ = '/home/ana/work/train.ipynb'", "/home/ana/work/train.ipynb"),
        "vscode": ("__vsc_ipynb_file__ = '/home/ana/code/eval.ipynb'", "/home/ana/code/eval.ipynb"),
        "unknown": ("__session__ = ''; __vsc_ipynb_file__ = ''", UNKNOWN_NOTEBOOK),
    }
    for run_id, (setting, _) in cases.items():
        run_cell(
            kernel,
            f"import os; os.environ.pop('JPY_SESSION_NAME', None)\n{setting}\n"
            f"nbtrack.init(project={PROJECT!r}, id={run_id!r}).finish()",
        )
    server = serve(root, tmp_path)
    try:
        client = Client(server.url)
        programs = {run_id: client.run(PROJECT, run_id, "program")["program"] for run_id in cases}
    finally:
        server.stop()
    assert programs == {run_id: expected for run_id, (_, expected) in cases.items()}
    assert not any("ipykernel_launcher" in p for p in programs.values())


def test_a_scripts_program_is_its_script(root: Path) -> None:
    with nbtrack.init(project=PROJECT, dir=root) as run:
        pass
    assert nbtrack.Api(dir=root).run(f"{PROJECT}/{run.id}").row.program == sys.argv[0]


def test_the_run_page_and_the_panel_say_the_same_step_and_name_the_notebook(
    kernel: Kernel, tmp_path: Path
) -> None:
    """One online notebook run, seen in the panel's final snapshot and on its run page in Chromium."""
    from tests.test_ui_browser import CHROMIUM, LAUNCH_ARGS, Watched

    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    server = start_server(tmp_path)
    try:
        run_cell(kernel, "%load_ext nbtrack")
        _, messages = run_cell(
            kernel,
            "__session__ = '/home/ana/work/train.ipynb'  # what Jupyter sets in the kernel\n"
            f"run = nbtrack.init(project={PROJECT!r}, name='online', base_url={server.url!r})\n"
            "for i in range(200):\n"
            "    run.log({'loss': 1 / (i + 1)})\n"
            "run.finish()\n"
            "print(run.url)",
        )
        url = printed(messages).strip().splitlines()[-1]
        assert "finished, step 199, 200 rows" in final_snapshot(messages)["text/plain"]
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            watched = Watched(browser)
            try:
                page = watched.open(url)
                terms = page.locator(".run-head .facts dt").all_inner_texts()
                values = page.locator(".run-head .facts dd").all_inner_texts()
                watched.shot("consistency-run-head")
            finally:
                watched.close()
                browser.close()
    finally:
        server.stop()
    facts = dict(zip(terms, values, strict=True))
    assert (facts["Step"], facts["Rows"]) == ("199", "200"), facts
    assert facts["Notebook"] == "/home/ana/work/train.ipynb" and "Program" not in facts, facts
    assert not watched.errors, watched.errors

"""A script's console capture (sdk/console_capture.py): real scripts run as `python script.py`.

What a script prints while its run is live becomes the run's console lines (stdout and stderr,
`\\r` redraws collapsed), in local mode and on a server's run page; the terminal sees exactly what
it saw without nbtrack; finish() ends it and puts the streams back; console=False or
NBTRACK_CONSOLE=off turns it off; a crash keeps what was printed before it.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack.errors import UsageError
from nbtrack.sdk import console_capture
from nbtrack.sdk.console_capture import ScriptConsole
from nbtrack.settings import resolve_settings
from tests.serving import Client, ServerProcess, start_server, subprocess_env

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real `nbtrack server` on a loopback port, over a fresh SQLite store."""
    pytest.importorskip("starlette")  # the server's extras
    served = start_server(tmp_path)
    yield served
    served.stop()


TRAIN = """
import logging, sys
import nbtrack

logging.basicConfig(format="%(levelname)s %(message)s")
run = nbtrack.init(project="console"{init})
print("epoch", 1, "loss", 0.5)
for i in range(1, 101):
    print(f"\\rtraining {{i}}%", end="", flush=True)
print()
sys.stderr.write("a warning on stderr\\n")
logging.getLogger("train").warning("logged through logging")
run.log({{"loss": 0.5}})
print("no newline before finish", end="")
run.finish()
print()
print("after finish: not the run's")
print("write restored:", "write" not in vars(sys.stdout) and "write" not in vars(sys.stderr))
"""

EXPECTED = [
    ("stdout", "epoch 1 loss 0.5"),
    ("stdout", "training 100%"),
    ("stderr", "a warning on stderr"),
    ("stderr", "WARNING logged through logging"),
    ("stdout", "no newline before finish"),
]


def run_script(
    tmp_path: Path, source: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(source))
    environment = {**subprocess_env(), "NBTRACK_DIR": str(tmp_path / "root")}
    environment.pop("NBTRACK_CONSOLE", None)  # capture is on unless a test says otherwise
    environment.update(env or {})
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, timeout=120, cwd=tmp_path, env=environment
    )
    # Decoded without universal newlines: the terminal's \r must be seen as it was written.
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def stored_lines(root: Path, project: str = "console") -> list[tuple[str, str]]:
    (run,) = nbtrack.Api(dir=str(root)).runs(project)
    return [(line["stream"], line["line"]) for line in run.output()]


def test_a_scripts_print_and_stderr_lines_are_its_runs_console_and_the_terminal_is_unchanged(
    tmp_path: Path,
) -> None:
    done = run_script(tmp_path, TRAIN.format(init=""))
    assert done.returncode == 0, done.stderr
    assert stored_lines(tmp_path / "root") == EXPECTED
    # The terminal got every byte, in order, \r redraws included: capture only copies.
    redraws = "".join(f"\rtraining {i}%" for i in range(1, 101))
    assert done.stdout == (
        f"epoch 1 loss 0.5\n{redraws}\nno newline before finish\nafter finish: not the run's\n"
        "write restored: True\n"
    )
    assert done.stderr == "a warning on stderr\nWARNING logged through logging\n"


@pytest.mark.parametrize("how", ["init", "env"])
def test_console_off_keeps_nothing_and_never_touches_the_streams(tmp_path: Path, how: str) -> None:
    if how == "init":
        done = run_script(tmp_path, TRAIN.format(init=", console=False"))
    else:
        done = run_script(tmp_path, TRAIN.format(init=""), env={"NBTRACK_CONSOLE": "off"})
    assert done.returncode == 0, done.stderr
    assert stored_lines(tmp_path / "root") == []
    assert "write restored: True" in done.stdout
    assert "epoch 1 loss 0.5" in done.stdout and "a warning on stderr" in done.stderr


def test_a_bad_console_setting_is_refused_naming_it() -> None:
    with pytest.raises(UsageError, match=r"NBTRACK_CONSOLE must be 'on' or 'off'.*'sometimes'"):
        resolve_settings(env={"NBTRACK_CONSOLE": "sometimes"})
    with pytest.raises(UsageError, match="console must be 'on' or 'off'"):
        resolve_settings(console="loud", env={})
    with pytest.raises(TypeError, match="console must be True, False"):
        resolve_settings(console=3, env={})  # type: ignore[arg-type]
    assert resolve_settings(console="off", env={"NBTRACK_CONSOLE": "on"}).console is False
    assert resolve_settings(env={"NBTRACK_CONSOLE": "off"}).console is False
    assert resolve_settings(env={}).console is True


def test_runs_one_after_another_and_side_by_side_each_keep_their_own_lines(tmp_path: Path) -> None:
    source = """
    import sys
    import nbtrack

    original = sys.stdout.write
    first = nbtrack.init(project="console", name="first")
    print("first only")
    first.finish()
    print("between runs")
    second = nbtrack.init(project="console", name="second")
    print("second only")
    third = nbtrack.init(project="console", name="third")
    print("second and third")
    second.finish()
    print("third only")
    third.finish()
    print("restored:", sys.stdout.write == original and "write" not in vars(sys.stdout))
    """
    done = run_script(tmp_path, source)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("restored: True\n")
    runs = {run.name: run for run in nbtrack.Api(dir=str(tmp_path / "root")).runs("console")}
    lines = {name: [line["line"] for line in run.output()] for name, run in runs.items()}
    assert lines == {
        "first": ["first only"],
        "second": ["second only", "second and third"],
        "third": ["second and third", "third only"],
    }


def test_a_crashing_script_keeps_what_it_printed_and_its_traceback(tmp_path: Path) -> None:
    source = """
    import nbtrack

    run = nbtrack.init(project="console")
    for epoch in range(3):
        print(f"epoch {epoch}")
    raise RuntimeError("diverged at epoch 2")
    """
    done = run_script(tmp_path, source)
    assert done.returncode == 1 and "diverged at epoch 2" in done.stderr
    lines = stored_lines(tmp_path / "root")
    assert lines[:3] == [("stdout", "epoch 0"), ("stdout", "epoch 1"), ("stdout", "epoch 2")]
    assert ("stderr", "Traceback (most recent call last):") in lines
    assert ("stderr", "RuntimeError: diverged at epoch 2") in lines


def test_a_killed_script_keeps_the_lines_handed_over_before_it_died(tmp_path: Path) -> None:
    """SIGKILL: no finish(), no atexit. The internal process sees its pipe close, stores what it
    got and marks the run crashed."""
    source = """
    import os, signal
    import nbtrack

    run = nbtrack.init(project="console")
    for epoch in range(3):
        print(f"epoch {epoch}", flush=True)
    assert run._connection.outbox.flush(30)  # the lines are on the pipe (test-only peek)
    os.kill(os.getpid(), signal.SIGKILL)
    """
    done = run_script(tmp_path, source)
    assert done.returncode == -9, done.stderr
    api = nbtrack.Api(dir=str(tmp_path / "root"))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        runs = api.runs("console")
        if runs and runs[0].state == "crashed":
            break
        time.sleep(0.2)
    assert api.runs("console")[0].state == "crashed"
    assert stored_lines(tmp_path / "root") == [("stdout", f"epoch {e}") for e in range(3)]


def test_stderr_bound_to_stdout_is_captured_once(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.setattr(sys, "stderr", stream)
    kept: list[tuple[str, str]] = []
    console = ScriptConsole()
    assert console.attach(1, lambda s, line, t: kept.append((s, line)), lambda: 0, lambda _: None)
    print("once")
    print("to stderr, the same object", file=sys.stderr)
    console.detach(1)
    assert kept == [("stdout", "once"), ("stdout", "to stderr, the same object")]
    assert "write" not in vars(stream)


def test_in_a_notebook_kernel_the_script_capture_stays_out() -> None:
    """ipykernel's streams (they have an `echo`) belong to the extension's capture."""

    class KernelStream(io.StringIO):
        echo = None

    console = ScriptConsole()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = KernelStream(), KernelStream()
    try:
        assert console.attach(1, lambda *_: None, lambda: 0, lambda _: None) is False
        assert "write" not in vars(sys.stdout)
    finally:
        sys.stdout, sys.stderr = saved


def test_in_a_real_kernel_each_line_is_captured_once(tmp_path: Path) -> None:
    """With the extension, its capture keeps a cell's lines (with their cell), and the script
    capture stays out; without it, the script capture leaves the kernel's streams alone too."""
    manager_module = pytest.importorskip("jupyter_client.manager")
    env = {**subprocess_env(), "NBTRACK_DIR": str(tmp_path / "root")}
    env.pop("NBTRACK_CONSOLE", None)
    manager, client = manager_module.start_new_kernel(kernel_name="python3", env=env)
    try:

        def execute(code: str) -> None:
            reply = client.execute_interactive(code, timeout=60, output_hook=lambda message: None)
            assert reply["content"]["status"] == "ok", reply["content"]

        execute(
            "import nbtrack\n"
            "from nbtrack.sdk import console_capture\n"
            "bare = nbtrack.init(project='bare')\n"
            "assert not console_capture.attached(bare)\n"
            "bare.finish()"
        )
        execute("%load_ext nbtrack")
        execute("run = nbtrack.init(project='kernel')\nprint('from the cell')")
        execute("assert not console_capture.attached(run)\nrun.finish()")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    (run,) = nbtrack.Api(dir=str(tmp_path / "root")).runs("kernel")
    lines = run.output()
    assert [line["line"] for line in lines] == ["from the cell"] and lines[0].get("_cell")


def test_a_flood_faster_than_the_outbox_drains_is_counted_and_marked_never_blocking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault injection: the run's backlog reads as over the limit for a while."""
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    kept: list[tuple[str, str]] = []
    warnings: list[str] = []
    backlog = {"items": 0}
    console = ScriptConsole()
    assert console.attach(
        1, lambda s, line, t: kept.append((s, line)), lambda: backlog["items"], warnings.append
    )
    lines_per_look = console_capture.CHECK_EVERY
    for i in range(lines_per_look):
        print(f"line {i}")
    backlog["items"] = console_capture.MAX_BACKLOG + 1  # the outbox falls behind
    for i in range(lines_per_look, 3 * lines_per_look):
        print(f"line {i}")
    backlog["items"] = 0  # it caught up
    for i in range(3 * lines_per_look, 4 * lines_per_look):
        print(f"line {i}")
    console.detach(1)
    assert "write" not in vars(stream)
    dropped = 2 * lines_per_look
    numbers = [int(line.split()[1]) for s, line in kept if s == "stdout"]
    assert len(numbers) == 4 * lines_per_look - dropped
    marks = [line for s, line in kept if s == "stderr"]
    assert marks == [console_capture._gap_line(dropped)]
    assert warnings and f"{dropped:,} console lines were not kept" in warnings[0]
    stream.flush()
    assert stream.buffer.getvalue().decode().count("\n") == 4 * lines_per_look  # the terminal got all


def test_an_online_scripts_lines_reach_the_servers_run_page_data(
    tmp_path: Path, server: ServerProcess
) -> None:
    done = run_script(tmp_path, TRAIN.format(init=f", base_url={server.url!r}"))
    assert done.returncode == 0, done.stderr
    client = Client(server.url)
    (run,) = nbtrack.Api(base_url=server.url).runs("console")
    # What the run page asks for (queries.js RUN_OUTPUT): the stored lines, in order.
    output = client.run("console", run.id, "output(offset: 0, limit: 1000)")["output"]
    assert [(line["stream"], line["line"]) for line in map(nbtrack_line, output)] == EXPECTED
    assert [(line["stream"], line["line"]) for line in run.output()] == EXPECTED


def nbtrack_line(text: str) -> dict[str, Any]:
    from nbtrack.console_format import read_console_line

    return read_console_line(text)


def test_the_run_page_shows_what_the_script_printed(tmp_path: Path, server: ServerProcess) -> None:
    ui = pytest.importorskip("tests.test_ui_browser")  # skips without Chromium and Playwright
    if not ui.CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    done = run_script(tmp_path, TRAIN.format(init=f", base_url={server.url!r}"))
    assert done.returncode == 0, done.stderr
    (run,) = nbtrack.Api(base_url=server.url).runs("console")
    with ui.sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(ui.CHROMIUM), args=ui.LAUNCH_ARGS)
        watched = ui.Watched(browser)
        try:
            page = watched.open(f"{server.url}/{run.entity}/console/runs/{run.id}")
            console = page.locator("pre.console")
            console.wait_for(state="visible", timeout=30_000)
            assert console.inner_text() == "\n".join(line for _, line in EXPECTED)
            stderr = page.locator("pre.console .console-stderr").all_inner_texts()
            assert stderr == [line for stream, line in EXPECTED if stream == "stderr"]
            assert "Nothing was printed" not in page.inner_text("body")
            watched.shot("script-console")
            assert watched.errors == []
        finally:
            watched.close()
            browser.close()

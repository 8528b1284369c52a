"""A person's view: JupyterLab (and Jupyter Notebook 7) in Debian's Chromium (driven by Playwright)
runs a cell that logs for a few seconds, and the live panel renders under it with a step counter
that rises.

Skipped unless Chromium, JupyterLab and Playwright are installed (`.ci/run` installs them).
A screenshot is saved under test-artifacts/.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PANEL = ".nbtrack-run-panel"  # the panel's root element (nbtrack/web/widget/panel.js)
STEP = f"{PANEL} .nbt-step"
FINISHED = f"{PANEL} .nbt-badge[data-state='finished']"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
    pytest.mark.timeout(300),
]
sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("jupyterlab")

CELLS = [
    "%load_ext nbtrack",
    "import time\nrun = nbtrack.init(project='browser', name='watched')\n"
    "for i in range(120):\n"
    "    run.log({'loss': 1 / (i + 1), 'acc': i / 120})\n"
    "    time.sleep(0.05)\n"
    "open('weights.bin', 'wb').write(bytes(2048))\n"
    "model = nbtrack.Artifact('weights', type='model')\n"
    "model.add_file('weights.bin')\n"
    "run.log_artifact(model)\n"
    "run.finish()",
]


# Each app's options that keep it from reaching out to the network, and where it opens a notebook.
LAB_QUIET = {
    "jupyterlab": ["--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
    "notebook": [],
}
NOTEBOOK_PATH = {"jupyterlab": "lab/tree", "notebook": "notebooks"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# The front ends a notebook user opens: JupyterLab and Jupyter Notebook 7 (each loads anywidget's
# front end its own way).
APPS = ["jupyterlab", "notebook"]


@pytest.fixture(params=APPS)
def lab(tmp_path: Path, root: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A JupyterLab or Notebook 7 server on a free loopback port, with a token; yields the notebook's URL."""
    pytest.importorskip(request.param)
    with lab_server(tmp_path, root, CELLS, app=request.param) as url:
        yield url


@contextlib.contextmanager
def lab_server(
    tmp_path: Path, root: Path, cells: list[str], name: str = "watch.ipynb", app: str = "jupyterlab"
) -> Iterator[str]:
    """JupyterLab (or, with app="notebook", Jupyter Notebook 7) serving tmp_path with a notebook of
    `cells` (NBTRACK_DIR=root for its kernels); yields the notebook's URL. Other browser tests
    (test_explorer_browser.py) use it too."""
    notebook = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
            for src in cells
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / name).write_text(json.dumps(notebook))
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBTRACK_")}
    env.update(NBTRACK_DIR=str(root), JUPYTER_CONFIG_DIR=str(tmp_path / ".jupyter"))
    command = [
        sys.executable, "-m", app, "--no-browser", "--allow-root", "--ip=127.0.0.1",
        f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
        *LAB_QUIET[app],
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_until(ready, 60, "JupyterLab to start")
        yield f"{base}/{NOTEBOOK_PATH[app]}/{name}?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def launch_chromium(playwright):  # type: ignore[no-untyped-def]
    """Debian's Chromium, headless, with nothing of its own reaching out to the network."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    )  # fmt: skip


def open_notebook(browser, url: str, height: int = 900):  # type: ignore[no-untyped-def]
    """A new page showing the notebook at url, its kernel idle, and the list its script errors go to."""
    page = browser.new_page(viewport={"width": 1280, "height": height})
    errors: list[str] = []

    def record(exc) -> None:  # type: ignore[no-untyped-def]
        # Notebook 7.6 itself throws once while loading (a settings schema its core bundle misses in
        # a fresh config folder), before any cell runs: not ours, so not counted.
        frames = (exc.stack or "").split("\n    at ")
        thrown_in = frames[1] if len(frames) > 1 else ""
        if "/static/notebook/notebook_core." not in thrown_in:
            errors.append(str(exc))

    page.on("pageerror", record)
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    return page, errors


def test_the_panel_renders_and_its_step_rises_while_the_cell_runs(
    lab: str, request: pytest.FixtureRequest
) -> None:
    app = request.node.callspec.params["lab"]
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page, errors = open_notebook(browser, lab)
        try:
            run_cell(page, 0)  # %load_ext nbtrack
            run_cell(page, 1)  # the logging loop
            page.wait_for_selector(STEP, timeout=60_000)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / f"panel-failed-{app}.png"))
            raise
        first = _step(page)
        page.wait_for_function(
            """([selector, first]) => {
                const node = document.querySelector(selector);
                const match = node && /\\d+/.exec(node.textContent.replace(/,/g, ""));
                return match !== null && parseInt(match[0], 10) > first;
            }""",
            arg=[STEP, first],
            timeout=30_000,
        )
        second = _step(page)
        page.screenshot(path=str(ARTIFACTS / f"panel-running-{app}.png"))
        page.wait_for_selector(FINISHED, timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / f"panel-finished-{app}.png"))
        final = page.locator(STEP).first.text_content()
        # The artifact it logged, with the version the store gave it while the run finished.
        artifacts = page.locator(".nbt-artifact").all_text_contents()
        browser.close()
    assert second > first
    # The step is the last one logged, as the web UI's run page says it, with the rows beside it.
    assert final == "step 119 · 120 rows"
    assert artifacts == ["logged model weights:v0 · 1 file, 2 kB"]
    assert not errors, errors


def _step(page) -> int:  # type: ignore[no-untyped-def]
    text = page.locator(STEP).first.text_content() or ""
    match = re.search(r"\d+", text.replace(",", ""))
    return int(match.group()) if match else -1


def run_cell(page, index: int) -> None:  # type: ignore[no-untyped-def]
    """Run one cell with Shift+Enter and wait until the kernel has taken it ("[*]" or "[n]").

    A key press that lands while JupyterLab is still settling (kernel connecting, focus moving) is
    lost without a trace, so an untaken cell is run again — never a taken one."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    prompt = cell.locator(".jp-InputPrompt")
    for _ in range(5):
        cell.locator(".jp-InputArea-prompt").click()
        page.keyboard.press("Shift+Enter")
        try:
            taken = "node => /\\[(\\*|\\d+)\\]/.test(node.textContent)"
            page.wait_for_function(taken, arg=prompt.element_handle(), timeout=10_000)
            return
        except sync_api.TimeoutError:
            continue
    raise AssertionError(f"cell {index} was never executed")

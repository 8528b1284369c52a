"""The extension in a real ipykernel, driven through jupyter_client as a front end would:
the panel is displayed, its updates arrive at a bounded rate and size, the final state lands,
and a dead internal process never breaks the next cell."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")
pytest.importorskip("anywidget")

WIDGET = "application/vnd.jupyter.widget-view+json"


class Kernel:
    """A real kernel and a client that collects every iopub message of each execution."""

    def __init__(self, cwd: Path, root: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NBTRACK_")}
        env["NBTRACK_DIR"] = str(root)
        self.manager = jupyter_client.KernelManager(kernel_name="python3")
        self.manager.start_kernel(cwd=str(cwd), env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def execute(self, code: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run code; return the execute_reply content and the iopub messages it caused."""
        msg_id = self.client.execute(code)
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            message = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            message["received"] = time.monotonic()
            mine = message["parent_header"].get("msg_id") == msg_id
            if mine and message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
            messages.append(message)
        return self.reply_to(msg_id, timeout), messages

    def reply_to(self, msg_id: str, timeout: float = 60) -> dict[str, Any]:
        """The shell reply to msg_id: wait_for_ready may have left a late kernel_info reply before it
        (on a loaded machine it asks more than once)."""
        deadline = time.monotonic() + timeout
        while True:
            reply = self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return dict(reply["content"])

    def wait_for(self, condition: Any, timeout: float = 30) -> dict[str, Any]:
        """The next iopub message for which condition(message) holds (raises after timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if condition(message):
                return message

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)


@pytest.fixture
def kernel(tmp_path: Path, root: Path) -> Iterator[Kernel]:
    k = Kernel(tmp_path, root)
    yield k
    k.close()


def panel_updates(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        m for m in messages if m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "update"
    ]


def test_live_panel_in_a_real_kernel(kernel: Kernel) -> None:
    reply, _ = kernel.execute("%load_ext nbtrack")
    assert reply["status"] == "ok"
    code = (
        "import time\n"
        "run = nbtrack.init(project='kernel', name='live')\n"
        "for i in range(60):\n"
        "    run.log({'loss': 1 / (i + 1), 'acc': i / 60})\n"
        "    time.sleep(0.05)\n"
    )
    reply, messages = kernel.execute(code)
    assert reply["status"] == "ok", reply
    displays = [m for m in messages if m["msg_type"] == "display_data"]
    assert len(displays) == 1
    bundle = displays[0]["content"]["data"]
    assert WIDGET in bundle and "text/plain" in bundle and "text/html" in bundle

    updates = panel_updates(messages)
    steps = [
        u["content"]["data"]["state"]["step"] for u in updates if "step" in u["content"]["data"]["state"]
    ]
    assert steps == sorted(steps) and steps and steps[-1] >= 40  # the step counter rises while the cell runs
    assert len(set(steps)) >= 3, steps  # several updates while the cell ran, not one at the end
    assert max(len(json.dumps(u["content"]["data"])) for u in updates) < 64_000
    sent = [u["header"]["date"] for u in updates]  # the kernel's own send times
    assert min((b - a).total_seconds() for a, b in itertools.pairwise(sent)) >= 0.09

    reply, messages = kernel.execute("run.finish()")
    assert reply["status"] == "ok"
    sent += [u["header"]["date"] for u in panel_updates(messages)]
    assert min((b - a).total_seconds() for a, b in itertools.pairwise(sent)) >= 0.09  # the final one too
    finals = [m for m in messages if m["msg_type"] == "update_display_data"]
    assert finals and "finished" in finals[-1]["content"]["data"]["text/plain"]


def test_a_killed_internal_process_is_replaced_and_the_panel_says_so(kernel: Kernel, root: Path) -> None:
    from tests.helpers import stored_history

    kernel.execute("%load_ext nbtrack")
    reply, _ = kernel.execute(
        "run = nbtrack.init(project='kernel', id='reborn')\nrun.log({'a': 1})\nrun._connection.process.kill()"
    )
    assert reply["status"] == "ok"
    kernel.wait_for(
        lambda m: (
            m["msg_type"] == "comm_msg"
            and any("took over" in n for n in m["content"]["data"]["state"].get("notices", []))
        )
    )
    reply, _ = kernel.execute("run.log({'a': 2})\nrun.finish()")
    assert reply["status"] == "ok"
    assert [r["a"] for r in stored_history(root, "reborn", project="kernel")] == [1, 2]


def test_a_dead_internal_process_never_breaks_the_next_cell(kernel: Kernel) -> None:
    kernel.execute("%load_ext nbtrack")
    reply, first = kernel.execute(
        "from nbtrack.transport.restart import MAX_RESTARTS\n"
        "run = nbtrack.init(project='kernel')\n"
        "run._connection.restarts = MAX_RESTARTS\nrun._connection.process.kill()"
    )
    assert reply["status"] == "ok"
    # The panel says what happened, as soon as the results thread sees the process gone.
    states = [u["content"]["data"]["state"].get("state") for u in panel_updates(first)]
    if "crashed" not in states:
        kernel.wait_for(
            lambda m: m["msg_type"] == "comm_msg" and m["content"]["data"]["state"].get("state") == "crashed"
        )
    reply, messages = kernel.execute("run.log({'a': 1})\nprint(1 + 1)")
    assert reply["status"] == "ok"
    assert any(m["msg_type"] == "stream" and "2" in m["content"]["text"] for m in messages)
    reply, _ = kernel.execute("%unload_ext nbtrack")
    assert reply["status"] == "ok"


def test_ctrl_c_in_a_cell_does_not_crash_the_run(kernel: Kernel, root: Path) -> None:
    kernel.execute("%load_ext nbtrack")
    kernel.execute("run = nbtrack.init(project='kernel', name='interrupted')\nrun.log({'before': 1})")
    msg_id = kernel.client.execute(
        "import time\nfor i in range(10**9):\n    run.log({'i': i})\n"
        "    if i == 200:\n        print('logging', flush=True)\n    time.sleep(0.001)"
    )
    kernel.wait_for(lambda m: m["msg_type"] == "stream" and "logging" in m["content"]["text"], timeout=60)
    kernel.manager.interrupt_kernel()  # Ctrl-C while the loop logs
    reply = kernel.reply_to(msg_id, timeout=30)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    for _ in range(20):  # ipykernel aborts requests that arrive while it still unwinds the error
        if kernel.execute("pass")[0]["status"] == "ok":
            break
    reply, _ = kernel.execute("run.log({'after': 1})\nrun.finish()\nprint(run.state)")
    assert reply["status"] == "ok"
    from tests.helpers import stored_history, stored_run

    assert stored_run(root, kernel_run_id(kernel), project="kernel").state == "finished"
    rows = stored_history(root, kernel_run_id(kernel), project="kernel")
    assert rows[0]["before"] == 1 and rows[-1]["after"] == 1 and len(rows) > 100
    # The interrupted call's row is whole or absent, and no row before it went missing.
    counted = [row["i"] for row in rows if "i" in row]
    assert counted == list(range(len(counted)))


def kernel_run_id(kernel: Kernel) -> str:
    _, messages = kernel.execute("print(run.id)")
    return next(m["content"]["text"].strip() for m in messages if m["msg_type"] == "stream")


def test_kernel_shutdown_finishes_the_live_runs(tmp_path: Path, root: Path) -> None:
    from tests.helpers import stored_history, stored_run

    k = Kernel(tmp_path, root)
    try:
        k.execute("%load_ext nbtrack")
        k.execute(
            "run = nbtrack.init(project='kernel', id='leftopen')\n"
            "for i in range(5000):\n    run.log({'i': i})"
        )
    finally:
        k.close()  # a clean shutdown: the extension finishes what is still live
    assert stored_run(root, "leftopen", project="kernel").state == "finished"
    assert len(stored_history(root, "leftopen", project="kernel")) == 5000


def test_a_single_spike_among_100000_steps_reaches_the_panel_and_its_chart(kernel: Kernel) -> None:
    """The live series is sampled with min/max buckets end to end: one spike among 100,000 flat
    steps is in the panel's data while the cell runs, and drawn in its final chart."""
    import re

    reply, _ = kernel.execute("%load_ext nbtrack")
    assert reply["status"] == "ok"
    code = (
        "run = nbtrack.init(project='kernel', name='spike')\n"
        "for i in range(100_000):\n"
        "    run.log({'loss': 1000.0 if i == 61_234 else 1.0 + (i % 7) * 1e-3})\n"
        "run.status()\n"  # the handler has every row: the next update carries the spike
        "import time; time.sleep(0.5)\n"
    )
    reply, messages = kernel.execute(code, timeout=120)
    assert reply["status"] == "ok", reply
    shown = [
        u["content"]["data"]["state"]["series"]["loss"]
        for u in panel_updates(messages)
        if "loss" in u["content"]["data"]["state"].get("series", {})
    ]
    assert shown, "no chart data reached the panel"
    last = shown[-1]
    assert len(last["values"]) <= 100 and max(last["values"]) == 1000.0
    assert last["steps"][last["values"].index(1000.0)] == 61_234

    reply, messages = kernel.execute("run.finish()")
    assert reply["status"] == "ok"
    html = [m for m in messages if m["msg_type"] == "update_display_data"][-1]["content"]["data"]["text/html"]
    sparkline = re.search(r'<polyline points="([^"]+)"', html)
    assert sparkline is not None, "the final snapshot draws no chart"
    ys = [float(point.split(",")[1]) for point in sparkline.group(1).split()]
    assert min(ys) < 2.0 and sorted(ys)[1] > 20.0  # one point at the top (the spike), the rest low


def test_an_alert_reaches_the_panel_at_once_and_its_final_snapshot(kernel: Kernel) -> None:
    reply, _ = kernel.execute("%load_ext nbtrack")
    assert reply["status"] == "ok"
    reply, _ = kernel.execute("run = nbtrack.init(project='kernel', name='alerting')")
    assert reply["status"] == "ok", reply
    reply, messages = kernel.execute("run.alert('loss diverged', 'nan at step 3', level='ERROR')")
    assert reply["status"] == "ok", reply
    shown = [
        u["content"]["data"]["state"]["alerts"]
        for u in panel_updates(messages)
        if "alerts" in u["content"]["data"]["state"]
    ]
    assert shown == [[{"level": "ERROR", "title": "loss diverged", "text": "nan at step 3"}]]
    reply, messages = kernel.execute("run.finish()")
    assert reply["status"] == "ok"
    finals = [m for m in messages if m["msg_type"] == "update_display_data"]
    assert "ERROR alert: loss diverged — nan at step 3" in finals[-1]["content"]["data"]["text/plain"]


def test_the_panel_lists_the_artifacts_a_run_logged_and_used(kernel: Kernel, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x,y\n1,2\n")
    reply, _ = kernel.execute("%load_ext nbtrack")
    assert reply["status"] == "ok"
    code = (
        "run = nbtrack.init(project='kernel', name='maker')\n"
        "art = nbtrack.Artifact('table', type='dataset')\n"
        f"art.add_file({str(data)!r})\n"
        "run.log_artifact(art)\n"
        "run.finish()\n"
    )
    reply, messages = kernel.execute(code)
    assert reply["status"] == "ok", reply
    listed = [
        u["content"]["data"]["state"]["artifacts"]
        for u in panel_updates(messages)
        if "artifacts" in u["content"]["data"]["state"]
    ]
    logged = {"role": "logged", "type": "dataset", "name": "table", "files": 1, "bytes": 8}
    # Listed at once, "not stored yet"; then with the version the store gave it.
    assert listed[0] == [{**logged, "version": ""}] and listed[-1] == [{**logged, "version": "v0"}]
    finals = [m for m in messages if m["msg_type"] == "update_display_data"]
    assert "logged dataset table:v0 · 1 file, 8 B" in finals[-1]["content"]["data"]["text/plain"]

    code = (
        "run = nbtrack.init(project='kernel', name='user')\n"
        "used = run.use_artifact('table:latest')\n"
        "run.finish()\n"
    )
    reply, messages = kernel.execute(code)
    assert reply["status"] == "ok", reply
    finals = [m for m in messages if m["msg_type"] == "update_display_data"]
    assert "used dataset table:v0 · 1 file, 8 B" in finals[-1]["content"]["data"]["text/plain"]

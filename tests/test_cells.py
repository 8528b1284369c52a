"""Notebook-native tracking in a real kernel: each row and console line knows its cell, a re-run
cell starts a new attempt, console output is captured (threads too, progress lines collapsed),
and code capture stores exactly what `%nbtrack code` shows, only when asked."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from tests.test_kernel import Kernel

PROJECT = "cells"


@pytest.fixture
def kernel(tmp_path: Path, root: Path) -> Iterator[Kernel]:
    k = Kernel(tmp_path, root)
    yield k
    k.close()


def run_cell(kernel: Kernel, code: str, cell_id: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    """Execute code as a front end would (with the cell's id in the request's metadata, as
    JupyterLab sends it); return its execution count and iopub messages. A failing cell fails."""
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}}
    metadata = {"cellId": cell_id} if cell_id else {}
    message = kernel.client.session.msg("execute_request", content, metadata=metadata)
    kernel.client.shell_channel.send(message)
    msg_id = message["header"]["msg_id"]
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while True:
        got = kernel.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if got["parent_header"].get("msg_id") != msg_id:
            continue
        if got["msg_type"] == "status" and got["content"]["execution_state"] == "idle":
            break
        messages.append(got)
    reply = kernel.reply_to(msg_id)
    assert reply["status"] == "ok", "\n".join(reply.get("traceback", []))
    return reply["execution_count"], messages


def printed(messages: list[dict[str, Any]], stream: str = "stdout") -> str:
    return "".join(
        m["content"]["text"] for m in messages if m["msg_type"] == "stream" and m["content"]["name"] == stream
    )


def start_run(kernel: Kernel, options: str = "") -> tuple[int, str]:
    run_cell(kernel, "%load_ext nbtrack")
    count, messages = run_cell(kernel, f"run = nbtrack.init(project={PROJECT!r}{options})\nprint(run.id)")
    return count, printed(messages).strip().splitlines()[-1]


def stored(root: Path, run_id: str) -> nbtrack.api.StoredRun:
    return nbtrack.Api(dir=root).run(f"{PROJECT}/{run_id}")


def sha(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def test_rows_and_console_lines_carry_the_cell_that_made_them(kernel: Kernel, root: Path) -> None:
    first, run_id = start_run(kernel)
    three = "for i in range(3):\n    run.log({'a': i})\nprint('from three')"
    four = (
        "import logging, sys\nrun.log({'b': 1})\nprint('from four', file=sys.stderr)\n"
        "logging.warning('from logging')"
    )
    c3, _ = run_cell(kernel, three, cell_id="cell-three")
    c4, _ = run_cell(kernel, four, cell_id="cell-four")
    c5, _ = run_cell(kernel, "run.log({'c': 2})\nrun.finish()")
    assert first < c3 < c4 < c5

    run = stored(root, run_id)
    assert [(row.get("a"), row.get("b"), row.get("c"), row["_cell"]) for row in run.history()] == [
        (0, None, None, c3),
        (1, None, None, c3),
        (2, None, None, c3),
        (None, 1, None, c4),
        (None, None, 2, c5),
    ]
    lines = {line["line"]: line for line in run.output()}
    assert lines[run_id]["_cell"] == first  # printed by the cell that started the run
    assert (lines["from three"]["_cell"], lines["from three"]["stream"]) == (c3, "stdout")
    assert (lines["from four"]["_cell"], lines["from four"]["stream"]) == (c4, "stderr")
    assert (lines["WARNING:root:from logging"]["_cell"], lines["WARNING:root:from logging"]["stream"]) == (
        c4,
        "stderr",
    )
    assert all(line["_timestamp"] > 0 for line in lines.values())
    assert run.cells[c3] == {"id": "cell-three", "hash": sha(three)}
    assert run.cells[c4] == {"id": "cell-four", "hash": sha(four)}
    assert "_cells" not in run.summary
    assert "_cell" not in run.history(keys=["a"])[0], "keys= cuts rows to the keys asked for"


def test_a_rerun_cell_starts_a_second_attempt_and_nothing_is_dropped(kernel: Kernel, root: Path) -> None:
    _, run_id = start_run(kernel)
    training = "for s in range(5):\n    run.log({'loss': 1.0 / (s + 1)}, step=s)"
    first, _ = run_cell(kernel, training)
    again, _ = run_cell(kernel, training)  # the classic re-run: steps 0..4 once more
    # The panel names the cells the steps came from, the attempt too.
    _, messages = run_cell(  # live updates come every 0.25 s: wait for the one after the re-run
        kernel,
        "import time\npanel = nbtrack.sdk.session.init_hook.runs[-1].panel\n"
        "for _ in range(100):\n"
        "    if panel.details and 'attempt 2' in panel.details[0]:\n"
        "        break\n"
        "    time.sleep(0.1)\n"
        "print(panel.details)",
    )
    assert f"steps 0-4 from cell [{first}]; steps 0-4 from cell [{again}] (attempt 2)" in printed(messages)
    _, messages = run_cell(kernel, "run.finish()\nprint(run.notices)")
    assert "attempt 2 started at step 0" in printed(messages)

    run = stored(root, run_id)
    rows = run.history()
    assert [(r["_step"], r.get("_attempt", 0), r["_cell"]) for r in rows] == [
        *((s, 0, first) for s in range(5)),
        *((s, 1, again) for s in range(5)),
    ]
    assert [r["_step"] for r in run.history(attempt=1)] == [0, 1, 2, 3, 4]
    assert [r["loss"] for r in run.history(keys=["loss"], attempt=0)] == [1.0 / (s + 1) for s in range(5)]


def test_within_one_cell_a_step_going_back_is_still_refused(kernel: Kernel, root: Path) -> None:
    _, run_id = start_run(kernel)
    _, messages = run_cell(
        kernel, "run.log({'x': 1}, step=5)\nrun.log({'x': 2}, step=3)\nrun.finish()\nprint(run.notices)"
    )
    assert "step 3 is not after step 5, the last step logged" in printed(messages)
    assert [r["x"] for r in stored(root, run_id).history()] == [1]


def test_a_threads_console_output_is_captured_and_progress_lines_collapse(kernel: Kernel, root: Path) -> None:
    _, run_id = start_run(kernel)
    started, messages = run_cell(
        kernel,
        "import threading, time\n"
        "def work():\n"
        "    for i in range(50):\n"
        "        print(f'\\rprogress {i:>2}/49', end='')\n"
        "    print()\n"
        "    time.sleep(0.5)\n"
        "    print('thread done')\n"
        "print('cell done')\n"  # before the thread: one stream, so lines would interleave as in a terminal
        "worker = threading.Thread(target=work)\n"
        "worker.start()\n"
        "time.sleep(0.2)",  # the progress is drawn while this cell runs; 'thread done' comes later
    )
    run_cell(kernel, "worker.join()\nrun.finish()")
    # What the cell showed is what it printed: the capture only copies it.
    assert "\rprogress  0/49" in printed(messages)

    lines = [line["line"] for line in stored(root, run_id).output()]
    assert "progress 49/49" in lines and "thread done" in lines and "cell done" in lines
    assert not any(line.startswith("progress") and line != "progress 49/49" for line in lines)
    thread_done = next(line for line in stored(root, run_id).output() if line["line"] == "thread done")
    assert thread_done["_cell"] >= started  # the thread's line, whichever cell ran by then


def test_console_capture_can_be_turned_off(kernel: Kernel, root: Path) -> None:
    run_cell(kernel, "%config NBTrack.capture_console = False")
    _, run_id = start_run(kernel)
    run_cell(kernel, "print('not kept')\nrun.log({'a': 1})\nrun.finish()")
    run = stored(root, run_id)
    assert run.output() == [] and [r["a"] for r in run.history()] == [1]


def test_code_capture_is_off_by_default(kernel: Kernel, root: Path) -> None:
    _, run_id = start_run(kernel)
    _, messages = run_cell(kernel, "%nbtrack code")
    assert "code capture is off" in printed(messages)
    run_cell(kernel, "run.finish()")
    with pytest.raises(FileNotFoundError):
        stored(root, run_id).file("code/cells.py")


def test_code_capture_stores_exactly_what_nbtrack_code_shows(kernel: Kernel, root: Path) -> None:
    run_cell(kernel, "__session__ = '/work/train.ipynb'")  # how Jupyter and VS Code name the notebook
    started, run_id = start_run(kernel, ", save_code=True")
    middle, _ = run_cell(kernel, "x = 41\nrun.log({'x': x + 1})")
    last, messages = run_cell(kernel, "%nbtrack code\nrun.finish()")
    shown = printed(messages)
    stored_code = stored(root, run_id).file("code/cells.py").decode()
    assert shown == stored_code + "\n"  # print() adds the newline
    assert [line for line in stored_code.splitlines() if line.startswith("# In[")] == [
        f"# In[{started}]:",
        f"# In[{middle}]:",
        f"# In[{last}]:",
    ]
    assert "x = 41\nrun.log({'x': x + 1})" in stored_code
    assert stored_code.startswith(
        f"# nbtrack: the cells of /work/train.ipynb run while run {run_id} was live"
    )


def test_cells_and_attempts_survive_a_restarted_internal_process(root: Path) -> None:
    from nbtrack.proto import nbtrack_pb2 as pb

    run = nbtrack.init(project=PROJECT, id="phoenix-cells", dir=root)
    run.notebook_link.cell(pb.CellRecord(execution_count=3, source_hash="a"))
    for step in (0, 1, 2):
        run.log({"x": step}, step=step)
    run.notebook_link.cell(pb.CellRecord(execution_count=4, source_hash="b"))
    run.log({"x": 0}, step=0)  # cell [4] goes back: attempt 1
    assert run.status().rows_logged == 4  # in the log before the kill
    assert run._connection.process is not None
    run._connection.process.kill()
    run.log({"x": 1}, step=1)  # the new process knows: still attempt 1, still cell [4]
    run.log({"x": 0}, step=0)  # and within cell [4] a step going back is still refused
    run.finish()
    assert run.restarts == 1
    rows = stored(root, "phoenix-cells").history()
    assert [(r["_step"], r.get("_attempt", 0), r["_cell"]) for r in rows] == [
        (0, 0, 3),
        (1, 0, 3),
        (2, 0, 3),
        (0, 1, 4),
        (1, 1, 4),
    ]
    assert any("step 0 is not after step 1, the last step logged" in notice for notice in run.notices)


def test_system_metrics_can_pause_between_cells(kernel: Kernel, root: Path) -> None:
    run_cell(kernel, "%config NBTrack.stats_between_cells = False")
    run_cell(kernel, "import os, time\nos.environ['NBTRACK_STATS_INTERVAL'] = '0.1'")
    _, run_id = start_run(kernel)
    _, messages = run_cell(kernel, "time.sleep(1.5)\nprint(time.time())")  # a cell runs: samples
    cell_ended = float(printed(messages).strip().splitlines()[-1])
    time.sleep(2.5)  # no cell runs: no samples
    resumed = time.time()
    run_cell(kernel, "time.sleep(1.0)\nrun.finish()")

    import json

    from nbtrack.store import Store

    with Store.at_root(root) as store:
        samples = [json.loads(line) for line in store.read_events("local", PROJECT, run_id)]
    times = [sample["_timestamp"] for sample in samples]
    assert sum(t < cell_ended for t in times) >= 5 and sum(t > resumed for t in times) >= 3, times
    # The idle stretch between the cells (the sleeps above make it) has no sample at all.
    assert not [t for t in times if cell_ended + 0.5 < t < resumed - 0.1], times
    # Between cells (after a second for the pause to get through a busy machine), none: unpaused,
    # a 0.1 s interval would have taken about ten there.
    assert sum(cell_ended + 1.0 < t < resumed for t in times) == 0, times

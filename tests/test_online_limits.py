"""A value too large for the tracking server costs that value only: against a real `nbtrack
server --max-body`, live and through `nbtrack sync`, every other row, the summary, the config and
the run's end arrive, and the user is told which key of which step the server holds a marker for."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

import nbtrack
from nbtrack.online.client import LIMIT_HEADER
from nbtrack.online.oversize import DROPPED_TYPE, BodyLimit, fit_object, fit_text, posted_size
from nbtrack.online.stream_post import StreamPost
from tests.serving import ServerProcess, start_server

pytestmark = pytest.mark.timeout(300)

MAX_BODY = 1_000_000
ROWS, BIG_STEP = 2000, 700
BIG = "a" * 2_000_000  # a 2 MB string: twice what the server takes in one request
BLOB = "b" * 1_500_000  # a summary value (never in a row) that can never fit either


def dropped(nbytes: int) -> dict[str, Any]:
    """The marker a reader finds instead of a value of nbytes (as JSON) the server could not take."""
    return {
        "_type": DROPPED_TYPE,
        "reason": f"too large for the tracking server ({MAX_BODY} bytes a request)",
        "bytes": nbytes,
    }


def limited_server(tmp_path: Path, name: str) -> ServerProcess:
    return start_server(tmp_path / name, extra_args=["--max-body", str(MAX_BODY)])


def check_stored(url: str, run_id: str) -> Any:
    """The run as the server holds it: finished, every row once at its step, the big values marked."""
    stored = nbtrack.Api(base_url=url).run(f"limits/{run_id}")
    assert stored.state == "finished"
    history = stored.history()
    assert [row["_step"] for row in history] == list(range(ROWS))
    assert [row["x"] for row in history] == list(range(ROWS))
    assert [row["_step"] for row in history if "text" in row] == [BIG_STEP]
    assert history[BIG_STEP]["text"] == dropped(len(BIG) + 2)  # the string's JSON has its quotes
    assert stored.summary["x"] == ROWS - 1
    assert stored.summary["text"] == dropped(len(BIG) + 2)
    assert stored.summary["blob"] == dropped(len(BLOB) + 2)
    assert stored.summary["best"] == 0.5  # set after the blob: the summary went on arriving
    assert stored.config == {"lr": 0.1}
    return stored


def test_one_value_too_large_for_the_server_costs_that_value_only(tmp_path: Path) -> None:
    server = limited_server(tmp_path, "live")
    try:
        # The server names its limit when it refuses a body, so the client need not guess it.
        refused = requests.post(f"{server.url}/graphql", data=b" " * (MAX_BODY + 1), timeout=30)
        assert (refused.status_code, refused.headers[LIMIT_HEADER]) == (413, str(MAX_BODY))

        run = nbtrack.init(base_url=server.url, project="limits", config={"lr": 0.1})
        for i in range(ROWS):
            run.log({"x": i, "text": BIG} if i == BIG_STEP else {"x": i})
            if i == 1000:
                run.summary["blob"] = BLOB  # the summary holds it from here on, in every post
            if i % 250 == 0:
                time.sleep(0.2)  # many posts, before and after the big row
        run.summary["best"] = 0.5
        run.finish(timeout=120)
        assert run.state == "finished"
        notices = "\n".join(run.notices)
        assert f"history line {BIG_STEP} (step {BIG_STEP})" in notices and "'text'" in notices, notices
        for where, key in (("summary", "blob"), ("summary", "text")):
            said = [n for n in run.notices if n.startswith(f"{where} '") and f"'{key}'" in n.split(":")[0]]
            assert len(said) == 1, notices  # once, not once per post
        assert "413" not in notices and "nbtrack sync" not in notices  # nothing was refused or left
        live = check_stored(server.url, run.id)
        live_history, live_summary = live.history(), live.summary
    finally:
        server.stop()

    # The same log replayed into a fresh server: the same run, the same notices.
    fresh = limited_server(tmp_path, "fresh")
    try:
        log_path = next(run.dir.glob("*.nbt"))
        synced = subprocess.run(
            [sys.executable, "-m", "nbtrack.cli", "sync", str(log_path), "--base-url", fresh.url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert synced.returncode == 0, synced.stderr
        assert f"{ROWS} rows, finished" in synced.stdout
        assert f"history line {BIG_STEP} (step {BIG_STEP})" in synced.stderr, synced.stderr
        replayed = check_stored(fresh.url, run.id)
        assert replayed.history() == live_history
        assert replayed.summary == live_summary
    finally:
        fresh.stop()


def test_a_config_value_too_large_for_the_server_is_marked_and_the_run_goes_on(tmp_path: Path) -> None:
    server = limited_server(tmp_path, "config")
    try:
        # The first upsert is refused: init() neither fails nor waits, the config goes without it.
        run = nbtrack.init(base_url=server.url, project="limits", config={"lr": 0.1, "vocab": BIG})
        run.log({"x": 0})
        run.config["more"] = BLOB  # every later upsert carries the whole config
        run.config["batch"] = 32
        run.log({"x": 1})
        run.finish(timeout=60)
        assert run.state == "finished"
        for key in ("vocab", "more"):
            said = [n for n in run.notices if n.startswith("config '") and f"'{key}'" in n.split(":")[0]]
            assert len(said) == 1, run.notices
        stored = nbtrack.Api(base_url=server.url).run(f"limits/{run.id}")
        assert stored.state == "finished"
        assert stored.config == {
            "lr": 0.1,
            "vocab": dropped(len(BIG) + 2),
            "more": dropped(len(BLOB) + 2),
            "batch": 32,
        }
        assert [row["x"] for row in stored.history()] == [0, 1]
    finally:
        server.stop()


def test_a_refusal_without_a_named_limit_halves_the_guess() -> None:
    limit = BodyLimit()
    limit.learn(4000, None)  # a proxy's 413 says nothing: at most half of what it refused
    assert (limit.bytes, limit.advertised) == (2000, False)
    limit.learn(1500, 1000)
    assert (limit.bytes, limit.advertised) == (1000, True)
    limit.learn(900, 5000)  # a limit no smaller than the refused body is not believed
    assert limit.bytes == 450
    limit.learn(3000, None)  # never grows back
    assert limit.bytes == 450


def test_a_line_is_fitted_at_the_cost_of_its_largest_values_only() -> None:
    row = orjson.dumps({"_step": 3, "small": 1.5, "big": "x" * 5000, "bigger": list(range(3000))}).decode()
    fitted = fit_object(row, 6000, "too large", keep={"_step"})
    assert fitted is not None
    text, gone = fitted
    assert posted_size(text) <= 6000
    assert [(item.key, item.nbytes) for item in gone] == [("bigger", len(orjson.dumps(list(range(3000)))))]
    assert orjson.loads(text)["big"] == "x" * 5000
    assert orjson.loads(text)["bigger"]["_type"] == DROPPED_TYPE
    assert fit_object(row, 20, "too large", keep={"_step"}) is None  # not even _step fits

    line = 'say "hi" ' * 1000
    cut = fit_text(line, 500, "too large")
    assert cut is not None and posted_size(cut) <= 500 and cut.startswith(line[:100])
    assert "more characters not stored: too large" in cut


def test_a_split_post_stores_the_same_lines_at_the_same_offsets() -> None:
    post = StreamPost(
        history=(10, ["h0", "h1", "h2"]), output=(4, ["o0", "o1"]), summary="{}", uploaded=["f"], complete=0
    )
    halves = post.split()
    assert halves is not None
    lines, last = halves
    assert (last.summary, last.uploaded, last.complete, last.lines()) == ("{}", ["f"], 0, 0)
    first, second = lines.split() or (None, None)
    assert first == StreamPost(history=(10, ["h0", "h1"]), output=(4, []))
    assert second == StreamPost(history=(12, ["h2"]), output=(4, ["o0", "o1"]))
    assert StreamPost(history=(0, ["only"]), complete=0).split() is None

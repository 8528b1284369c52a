"""The read API and the plain-text tables, over a real store in a temporary nbtrack folder."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbtrack import jsonutil
from nbtrack.api import Api, RunNotFoundError, StoredRun
from nbtrack.errors import NbtrackError, UsageError
from nbtrack.store import DB_FILENAME, Store, StoreError
from nbtrack.tables import render_table, runs_table


@pytest.fixture
def filled(root: Path) -> Path:
    """An nbtrack folder with two runs in me/mnist, one in team/mnist and one in me/cifar."""
    return filled_folder(root)


def filled_folder(root: Path) -> Path:
    with Store.at_root(root) as store:
        store.upsert_run(
            "me",
            "mnist",
            "abc",
            display_name="brisk-sun-1",
            config={"lr": 0.1},
            tags=["base"],
            created_at=100.0,
        )
        rows = [{"_step": s, "_runtime": s * 1.5, "loss": 1 / (s + 1)} for s in range(5)]
        rows[2]["acc"] = math.nan
        store.write_history("me", "mnist", "abc", 0, [jsonutil.dumps_str(row) for row in rows])
        store.write_summary("me", "mnist", "abc", {"loss": 0.2, "acc": math.inf})
        store.finish_run("me", "mnist", "abc", state="finished", exit_code=0)
        store.upsert_run("me", "mnist", "def", notes="n", group="g", job_type="eval", created_at=200.0)
        store.upsert_run("team", "mnist", "abc", created_at=50.0)
        store.upsert_run("me", "cifar", "xyz", created_at=300.0)
    return root


@pytest.fixture
def api(filled: Path) -> Iterator[Api]:
    with Api(dir=filled) as opened:
        yield opened


# ---- opening ---------------------------------------------------------------------------------


def test_a_missing_folder_says_how_to_get_runs(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no runs were found under .*nowhere.*nbtrack demo.*dir="):
        Api(dir=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no runs were found"):
        Api(dir=tmp_path / "empty")
    assert not (tmp_path / "empty" / DB_FILENAME).exists()  # looking did not create a database


def test_the_folder_comes_from_nbtrack_dir_then_dot_nbtrack(
    filled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_DIR", str(filled))
    assert [p.name for p in Api().projects()] == ["cifar", "mnist", "mnist"]
    monkeypatch.delenv("NBTRACK_DIR")
    with pytest.raises(UsageError, match=r"\.nbtrack"):
        Api()  # the autouse fixture made tmp_path the working folder
    filled.rename(tmp_path / ".nbtrack")
    assert len(Api().runs("me/mnist")) == 2


def test_a_server_url_must_be_http(filled: Path) -> None:
    with pytest.raises(UsageError, match="http"):
        Api(base_url="localhost:8080")


# ---- a store nobody may write -----------------------------------------------------------------

# Writes a run, then dies with its database open: its last commits are only in the -wal file.
KILLED_WRITER = """
import os, signal, sys
from nbtrack.store import Store
store = Store.at_root(sys.argv[1])
store.upsert_run("me", "late", "w1", config={"lr": 0.5})
store.write_history("me", "late", "w1", 0, ['{"_step": 0, "loss": 0.5}'])
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def read_only_root(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A tmpfs holding a filled nbtrack folder (left as request.param says), then remounted
    read-only: tests run as root, whom no file mode stops, but a read-only mount does."""
    mount = tmp_path / "ro"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        root = mount / "nbtrack"
        filled_folder(root)
        if request.param != "closed":
            subprocess.run([sys.executable, "-c", KILLED_WRITER, str(root)], check=False)
        if request.param == "killed-without-shm":
            (root / (DB_FILENAME + "-shm")).unlink()
        left = sorted(path.name for path in root.iterdir())
        assert ("nbtrack.db-wal" in left) == (request.param != "closed"), left
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield root
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("read_only_root", ["closed", "killed", "killed-without-shm"], indirect=True)
def test_a_read_only_store_reads_everything(read_only_root: Path) -> None:
    assert not os.access(read_only_root, os.W_OK)
    before = sorted(path.name for path in read_only_root.iterdir())
    with Api(dir=read_only_root) as api:
        assert {(p.entity, p.name) for p in api.projects()} >= {("me", "mnist"), ("team", "mnist")}
        run = api.run("me/mnist/abc")
        assert (run.state, run.config, run.summary["loss"]) == ("finished", {"lr": 0.1}, 0.2)
        assert [row["_step"] for row in run.history()] == list(range(5))
    out = subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", "runs", "me/mnist", "--dir", str(read_only_root)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "abc" in out.stdout and "def" in out.stdout
    assert sorted(path.name for path in read_only_root.iterdir()) == before


@pytest.mark.parametrize("read_only_root", ["killed", "killed-without-shm"], indirect=True)
def test_a_read_only_store_reads_the_commits_only_its_wal_holds(read_only_root: Path) -> None:
    with Api(dir=read_only_root) as api:
        run = api.run("me/late/w1")
        assert (run.config, run.history()) == ({"lr": 0.5}, [{"_step": 0, "loss": 0.5}])


def test_a_read_only_store_refuses_writes_and_creates_nothing(filled: Path) -> None:
    with Store(f"sqlite:///{filled / DB_FILENAME}", read_only=True) as store:
        assert store.get_run("me", "mnist", "abc") is not None
        with pytest.raises(StoreError, match="readonly"):
            store.upsert_run("me", "mnist", "new")
    with pytest.raises(UsageError, match="read-only"):
        Store("sqlite://", read_only=True)


# ---- runs and run ------------------------------------------------------------------------------


def test_runs_of_a_project_newest_first(api: Api) -> None:
    assert [(r.entity, r.id) for r in api.runs("me/mnist")] == [("me", "def"), ("me", "abc")]
    assert [(r.entity, r.id) for r in api.runs("mnist")] == [("me", "def"), ("me", "abc"), ("team", "abc")]
    assert api.runs("nothing-here") == []


@pytest.mark.parametrize("path", ["", "  ", "/", "me/", "/mnist", "a/b/c"])
def test_a_malformed_project_path_is_a_value_error(api: Api, path: str) -> None:
    with pytest.raises(ValueError, match="not a project path"):
        api.runs(path)


def test_run_by_each_path_form(api: Api) -> None:
    assert api.run("me/mnist/abc").path == "me/mnist/abc"
    assert api.run("me/mnist/runs/abc").path == "me/mnist/abc"
    assert api.run("cifar/xyz").path == "me/cifar/xyz"
    for bad in ["abc", "me/mnist/abc/extra", "me//abc"]:
        with pytest.raises(ValueError):
            api.run(bad)


def test_an_unknown_run_is_a_clear_lookup_error(api: Api) -> None:
    with pytest.raises(
        RunNotFoundError, match=r"no run 'nope' in project 'me/mnist'.*runs\('me/mnist'\)"
    ) as info:
        api.run("me/mnist/nope")
    assert isinstance(info.value, LookupError) and isinstance(info.value, NbtrackError)


def test_an_id_in_two_entities_must_name_one(api: Api) -> None:
    with pytest.raises(UsageError, match="several entities"):
        api.run("mnist/abc")
    assert api.run("team/mnist/abc").entity == "team"


def test_a_run_shows_what_was_stored(api: Api) -> None:
    run = api.run("me/mnist/abc")
    assert (run.id, run.name, run.entity, run.project) == ("abc", "brisk-sun-1", "me", "mnist")
    assert (run.state, run.exit_code, run.runtime, run.created_at) == ("finished", 0, 6.0, 100.0)
    assert run.config == {"lr": 0.1}
    assert run.summary == {"loss": 0.2, "acc": math.inf}
    assert (run.tags, run.notes, run.group, run.job_type, run.url) == (["base"], None, None, None, None)
    assert repr(run) == "<StoredRun me/mnist/abc (finished)>"
    other = api.run("me/mnist/def")
    assert (other.name, other.notes, other.group, other.job_type) == ("def", "n", "g", "eval")


def test_refresh_follows_a_running_run(api: Api, filled: Path) -> None:
    run = api.run("me/mnist/def")
    with Store.at_root(filled) as store:
        store.write_summary("me", "mnist", "def", {"loss": 0.5})
        store.finish_run("me", "mnist", "def", state="crashed", exit_code=None)
    assert run.state == "running"  # a snapshot until asked
    run.refresh()
    assert (run.state, run.summary) == ("crashed", {"loss": 0.5})


def test_history_as_rows(api: Api) -> None:
    run = api.run("me/mnist/abc")
    rows = run.history()
    assert [row["_step"] for row in rows] == [0, 1, 2, 3, 4]
    assert math.isnan(rows[2]["acc"])
    assert run.history(keys=["acc"])[0]["_step"] == 2
    assert run.history(keys="loss") == run.history(keys=["loss"])  # a lone name is one key
    assert api.run("me/mnist/def").history() == []


def test_history_as_a_dataframe(api: Api) -> None:
    frame = api.run("me/mnist/abc").history(keys=["loss", "acc"], pandas=True)
    assert list(frame.columns) == ["_step", "loss", "acc"]
    assert list(frame["_step"]) == [0, 1, 2, 3, 4]
    assert frame["acc"].isna().all()  # NaN where logged, missing elsewhere
    assert api.run("me/mnist/def").history(pandas=True).empty


def test_history_as_a_dataframe_without_pandas(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # what `import pandas` meets when it is absent
    with pytest.raises(ImportError, match="pip install pandas"):
        api.run("me/mnist/abc").history(pandas=True)


def test_projects_with_counts(api: Api) -> None:
    projects = {(p.entity, p.name): p.run_count for p in api.projects()}
    assert projects == {("me", "mnist"): 2, ("team", "mnist"): 1, ("me", "cifar"): 1}


# ---- tables ------------------------------------------------------------------------------------


def test_render_table_aligns_and_cuts() -> None:
    text = render_table(
        ["name", "loss", "note"],
        [["a", 0.123456, "short"], ["longer name", 12, "x" * 50], ["c", None, "two\nlines"]],
    )
    assert text.splitlines() == [
        "name           loss  note",
        "-----------  ------  --------------------------------",
        "a            0.1235  short",
        "longer name      12  " + "x" * 31 + "…",
        "c                    two lines",
    ]


def test_render_table_aligns_wide_and_combining_characters_as_a_terminal_shows_them() -> None:
    """An emoji or a CJK character takes two terminal columns, a combining accent none: the
    columns after a name holding them still line up, and a long one is cut to the width."""
    text = render_table(
        ["name", "state"],
        [
            ["plain", "finished"],
            ["\u03b1-run 🚀", "finished"],
            ["日本語の実験", "crashed"],
            ["e\u0301te\u0301", "running"],
        ],
    )
    lines = text.splitlines()
    del lines[1]  # the rule
    starts = {
        _columns(line[: line.index(state)])
        for line, state in zip(lines, ["state", "f", "f", "c", "r"], strict=True)
    }
    assert starts == {14}, text  # "日本語の実験" is 12 columns, then the gap
    assert len(text.splitlines()[1]) == 14 + len("finished")
    cut = render_table(["name"], [["実" * 40]]).splitlines()[2]
    assert _columns(cut) <= 32 and cut.endswith("…"), cut


def _columns(text: str) -> int:
    """The terminal columns text takes (East Asian wide and fullwidth: 2; combining marks: 0)."""
    import unicodedata

    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def test_render_table_refuses_ragged_rows() -> None:
    with pytest.raises(ValueError, match="2 cells for 3 headers"):
        render_table(["a", "b", "c"], [[1, 2]])


def test_runs_table_lists_runs_with_shared_summary_keys(api: Api) -> None:
    runs: list[StoredRun] = api.runs("me/mnist")
    lines = runs_table(runs).splitlines()
    assert lines[0].split() == ["id", "name", "state", "created", "runtime", "rows", "loss", "acc"]
    assert re.fullmatch(
        r"def {15}running   \d{4}-\d\d-\d\d \d\d:\d\d {14}0", lines[2]
    )  # no name, summary, runtime
    assert re.fullmatch(r"abc  brisk-sun-1  finished  \S+ \S+ +6\.0 s +5 +0\.2 +inf", lines[3])
    # RunRow works too, and the keys can be chosen.
    assert runs_table([runs[1].row], summary_keys=["loss"]).splitlines()[0].split()[-1] == "loss"


def test_runs_table_shows_a_summarized_metric_as_the_web_ui_does(root: Path) -> None:
    with Store.at_root(root) as store:
        summary = {"loss": {"min": 0.1, "last": 0.3}, "acc": {"max": 0.9}, "shape": {"h": 2, "w": 3}, "_t": 1}
        store.write_summary("me", "p", "r", summary)
        rows = store.list_runs("p")
    header, _, line = runs_table(rows).splitlines()
    assert header.split()[-3:] == ["rows", "loss", "acc"]  # no container, no _private key
    assert line.endswith("last 0.3 · min 0.1  max 0.9"), line  # formatting.format_summary

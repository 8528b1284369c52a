"""Run management in an nbtrack folder and in the store: runs renamed, notes and tags edited and
runs deleted through nbtrack.Api and `nbtrack run`; a deleted run leaves no row in SQLite or
PostgreSQL (every table of the schema looked in), no file and no transaction log; a run whose
process is alive cannot be deleted, a stale "running" one only with force."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbtrack
from nbtrack import jsonutil
from nbtrack.api import Api, RunNotFoundError
from nbtrack.errors import UsageError
from nbtrack.store import Store
from tests import serving
from tests.run_rows import rows_of_run, run_pk

EVERY_KIND = {"runs", "history", "history_rollup", "output", "events", "alerts"}


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, root: Path) -> str:
    if request.param == "postgres":
        if not serving.POSTGRES_URL:
            pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the store tests on PostgreSQL")
        return serving.POSTGRES_URL
    return f"sqlite:///{root / 'nbtrack.db'}"


def _fill(store: Store, entity: str, project: str, run_id: str, state: str = "finished") -> None:
    """A run with a row in every table that holds runs' rows."""
    store.upsert_run(entity, project, run_id, display_name="n", tags=["t"], config={"lr": 0.1})
    rows = [jsonutil.dumps_str({"_step": s, "_runtime": s, "loss": 1 / (s + 1)}) for s in range(300)]
    store.write_history(entity, project, run_id, 0, rows)
    store.write_output(entity, project, run_id, 0, ["hello", "world"])
    store.write_events(entity, project, run_id, 0, ['{"cpu": 3}'])
    store.write_summary(entity, project, run_id, {"loss": 0.1})
    store.add_alert(entity, project, run_id, title="t", text="x", level="WARN")
    if state != "running":
        store.finish_run(entity, project, run_id, state=state, exit_code=0)


def test_deleting_a_run_leaves_no_row_of_it_in_any_table(store_url: str) -> None:
    entity, project = serving.unique_name("e"), serving.unique_name("p")
    with Store(store_url) as store:
        _fill(store, entity, project, "gone1")
        _fill(store, entity, project, "kept1")
        pk, kept_pk = run_pk(store_url, entity, project, "gone1"), run_pk(store_url, entity, project, "kept1")
        assert set(rows_of_run(store_url, pk, "gone1")) == EVERY_KIND
        deleted = store.delete_run(entity, project, "gone1")
        assert deleted is not None and deleted.run_id == "gone1" and deleted.history_line_count == 300
        assert rows_of_run(store_url, pk, "gone1") == {}
        assert store.get_run(entity, project, "gone1") is None
        assert store.delete_run(entity, project, "gone1") is None  # a second delete finds nothing
        assert set(rows_of_run(store_url, kept_pk, "kept1")) == EVERY_KIND  # the other run is whole
        assert len(store.read_history(entity, project, "kept1")) == 300
        assert not store.was_deleted(entity, project, "gone1")  # not running: no mark left either


# ---- nbtrack.Api on a folder ------------------------------------------------------------------

SCRIPT = """
import sys, nbtrack
run = nbtrack.init(project="proj", name="first name", tags=["a"], dir=sys.argv[1])
for step in range(20):
    run.log({"loss": 1 / (step + 1)})
run.log({"img": nbtrack.Image([[0, 255], [255, 0]])})
run.alert(title="t", text="x")
open("notes.txt", "w").write("saved")
run.save("notes.txt")
run.finish()
print(run.id)
"""


def _local_run(root: Path, tmp_path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root)],
        cwd=tmp_path,
        env=serving.subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _traces(root: Path, run_id: str) -> list[Path]:
    """Every file or folder of the folder that belongs to the run."""
    return [p for p in root.rglob("*") if run_id in p.as_posix()]


def test_a_local_run_is_renamed_edited_and_deleted_with_its_files_and_logs(
    root: Path, tmp_path: Path
) -> None:
    gone, kept = _local_run(root, tmp_path), _local_run(root, tmp_path)
    with Api(dir=root) as api:
        run = api.run(f"proj/{gone}")
        assert run.name == "first name" and run.state == "finished"
        run.name = "  renamed  "
        run.notes = "why\nthis run"
        run.tags = ["b", "a", "b"]
        run.update()
        assert (run.name, run.notes, run.tags) == ("renamed", "why\nthis run", ["b", "a"])
    with Api(dir=root) as api:
        run = api.run(f"proj/{gone}")
        assert (run.name, run.notes, run.tags) == ("renamed", "why\nthis run", ["b", "a"])
        assert len(run.history()) == 21 and run.alerts and run.file("notes.txt") == b"saved"
        run.tags.remove("b")
        run.update()
        assert api.run(f"proj/{gone}").tags == ["a"]
        for bad, match in (("", "non-empty"), ("x\0", "NUL")):
            run.name = bad
            with pytest.raises(UsageError, match=match):
                run.update()
        run.refresh()
        url = f"sqlite:///{root / 'nbtrack.db'}"
        pk = run_pk(url, "local", "proj", gone)
        assert {"runs", "history", "history_rollup", "alerts"} <= set(rows_of_run(url, pk, gone))
        traces = _traces(root, gone)
        assert any(p.suffix == ".nbt" for p in traces) and any(p.name == "notes.txt" for p in traces)
        assert any(p.suffix == ".png" for p in traces)
        run.delete()
        assert rows_of_run(url, pk, gone) == {}
        assert _traces(root, gone) == []
        with pytest.raises(RunNotFoundError):
            api.run(f"proj/{gone}")
        with pytest.raises(RunNotFoundError):
            run.delete()
        other = api.run(f"proj/{kept}")
        assert len(other.history()) == 21 and other.file("notes.txt") == b"saved"
        assert any(p.suffix == ".nbt" for p in _traces(root, kept))


def test_a_live_local_run_cannot_be_deleted_and_a_stale_running_one_only_with_force(root: Path) -> None:
    run = nbtrack.init(project="proj", dir=root)
    try:
        run.log({"loss": 1.0})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _stored(root, run.id):
            time.sleep(0.05)
        with Api(dir=root) as api:
            stored = api.run(f"proj/{run.id}")
            with pytest.raises(UsageError, match=r"still being written by process \d+.*finish the run"):
                stored.delete(force=True)  # its process would write it again: even force cannot
    finally:
        run.finish()
    with Api(dir=root) as api:
        assert api.run(f"proj/{run.id}").state == "finished"
    # A run left "running" by a process that is gone: refused, then deleted with force.
    with Store.at_root(root) as store:
        _fill(store, "local", "proj", "stale1", state="running")
    with Api(dir=root) as api:
        stale = api.run("proj/stale1")
        with pytest.raises(UsageError, match="still running: finish it first, or delete it with force"):
            stale.delete()
        assert api.run("proj/stale1").state == "running"
        stale.delete(force=True)
        with pytest.raises(RunNotFoundError):
            api.run("proj/stale1")


def _stored(root: Path, run_id: str) -> bool:
    if not (root / "nbtrack.db").exists():
        return False
    with Store.for_reading(root) as store:
        found = store.get_run("local", "proj", run_id)
        return found is not None and found.history_line_count > 0


# ---- `nbtrack run` ----------------------------------------------------------------------------


def nbtrack_cli(*args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", *args],
        capture_output=True,
        text=True,
        stdin=stdin,
        env=serving.subprocess_env(),
        timeout=120,
    )


@pytest.fixture
def two_runs(root: Path) -> Iterator[Path]:
    with Store.at_root(root) as store:
        _fill(store, "local", "proj", "run1")
        _fill(store, "local", "proj", "run2")
    yield root


def test_the_cli_renames_edits_and_deletes_with_yes(two_runs: Path) -> None:
    where = ["--dir", str(two_runs)]
    done = nbtrack_cli("run", "rename", "proj/run1", "better name", *where)
    assert done.returncode == 0 and "renamed local/proj/run1: 'n' -> 'better name'" in done.stdout, done
    done = nbtrack_cli(
        "run", "edit", "proj/run1", "--notes", "a note", "--add-tag", "best", "--remove-tag", "t", *where
    )
    assert done.returncode == 0 and "tags best; notes 'a note'" in done.stdout, done
    with Api(dir=two_runs) as api:
        run = api.run("proj/run1")
        assert (run.name, run.notes, run.tags) == ("better name", "a note", ["best"])
    assert nbtrack_cli("run", "edit", "proj/run1", *where).returncode == 1  # nothing to change
    done = nbtrack_cli("run", "delete", "proj/run1", "proj/nosuch", "--yes", *where)
    assert done.returncode == 1 and "nosuch" in done.stderr  # every path checked first: nothing deleted
    done = nbtrack_cli("run", "delete", "proj/run1", "--yes", *where)
    assert done.returncode == 0 and "deleted local/proj/run1 (better name)" in done.stdout, done
    with Api(dir=two_runs) as api:
        assert [r.id for r in api.runs("proj")] == ["run2"]


def test_the_cli_refuses_to_delete_without_a_terminal_or_yes(two_runs: Path) -> None:
    done = nbtrack_cli("run", "delete", "proj/run1", "--dir", str(two_runs))
    assert done.returncode == 2 and "stdin is not a terminal" in done.stderr and "--yes" in done.stderr
    with Api(dir=two_runs) as api:
        assert len(api.runs("proj")) == 2


def _on_terminal(args: list[str], answer: bytes) -> tuple[int, str]:
    """Run `nbtrack` with a terminal as stdin, stdout and stderr, typing answer at its question."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "nbtrack.cli", *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=serving.subprocess_env(),
    )
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 60
    while b"[y/N]" not in seen and time.monotonic() < deadline:
        try:
            seen += os.read(controller, 4096)
        except OSError:
            break
    os.write(controller, answer)
    code = process.wait(timeout=60)
    try:
        while chunk := os.read(controller, 4096):
            seen += chunk
    except OSError:
        pass
    os.close(controller)
    return code, seen.decode(errors="replace")


def test_the_cli_asks_on_a_terminal_naming_the_runs(two_runs: Path) -> None:
    args = ["run", "delete", "proj/run1", "proj/run2", "--dir", str(two_runs)]
    code, screen = _on_terminal(args, b"n\n")
    assert code == 1 and "nothing deleted" in screen, screen
    assert "local/proj/run1  'n'  finished, 300 history rows" in screen and "these 2 runs" in screen
    with Api(dir=two_runs) as api:
        assert len(api.runs("proj")) == 2
    code, screen = _on_terminal(args, b"y\n")
    assert code == 0 and "deleted local/proj/run2" in screen, screen
    with Api(dir=two_runs) as api:
        assert api.runs("proj") == []


def test_the_cli_deletes_on_a_server_with_the_keys_entity_only(tmp_path: Path) -> None:
    server = serving.start_server(tmp_path)
    try:
        owner, other = serving.unique_name("own"), serving.unique_name("oth")
        key, other_key = serving.create_key(server, owner), serving.create_key(server, other)
        client = serving.Client(server.url, owner, key)
        client.upsert("proj", "srv1", displayName="on server")
        finish = {"complete": True, "exitcode": 0, "files": {}}
        assert client.stream("proj", "srv1", finish).ok
        path = f"{owner}/proj/srv1"
        target = ["--base-url", server.url]
        refused = nbtrack_cli("run", "delete", path, "--yes", *target, "--api-key", other_key)
        assert refused.returncode == 1 and "no run 'srv1'" in refused.stderr, refused  # not even seen
        assert client.run("proj", "srv1", "displayName") == {"displayName": "on server"}
        renamed = nbtrack_cli("run", "rename", path, "new", *target, "--api-key", key)
        assert renamed.returncode == 0, renamed
        assert client.run("proj", "srv1", "displayName") == {"displayName": "new"}
        done = nbtrack_cli("run", "delete", path, "--yes", *target, "--api-key", key)
        assert done.returncode == 0 and f"deleted {path} (new)" in done.stdout, done
        assert client.run("proj", "srv1", "name") is None
    finally:
        server.stop()

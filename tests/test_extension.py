"""The extension in IPython's in-process shell: load/unload, init interception, the warm spare,
cell hooks that never raise, and the magics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import nbtrack
from nbtrack.sdk import session
from tests.helpers import stored_history, stored_run


@pytest.fixture
def shell(root: Path) -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.config.NBTrack.dir = str(root)
    ip.config.NBTrack.project = "test"
    ip.config.NBTrack.display = "text"
    ip.run_cell("%load_ext nbtrack", store_history=True)
    yield ip
    ip.run_cell("%unload_ext nbtrack")
    InteractiveShell.clear_instance()


def run_cell(ip: InteractiveShell, code: str) -> object:
    result = ip.run_cell(code, store_history=True)
    result.raise_error()
    return result.result


def test_load_installs_and_unload_undoes_exactly(shell: InteractiveShell) -> None:
    tracker = session.init_hook
    assert tracker is not None
    assert "nbtrack" in shell.magics_manager.magics["line"]
    assert tracker.pre_run_cell in shell.events.callbacks["pre_run_cell"]
    shell.run_cell("%unload_ext nbtrack")
    assert session.init_hook is None
    assert "nbtrack" not in shell.magics_manager.magics["line"]
    assert tracker.pre_run_cell not in shell.events.callbacks["pre_run_cell"]
    shell.run_cell("%load_ext nbtrack")  # and it loads again


def test_init_takes_defaults_from_config_and_arguments_win(shell: InteractiveShell, root: Path) -> None:
    run_cell(shell, "run = nbtrack.init(config={'lr': 1})\nrun.log({'a': 1})\nrun.finish()")
    run = shell.user_ns["run"]
    assert run.project == "test" and run.dir.is_relative_to(root)
    assert stored_run(root, run.id).config == {"lr": 1}
    run_cell(shell, "other = nbtrack.init(project='other')\nother.finish()")
    assert shell.user_ns["other"].project == "other"


def test_init_takes_the_warm_spare(shell: InteractiveShell) -> None:
    """init() in a kernel runs on the spare started ahead of it (benchmarks/bench_kernel.py
    measures what that saves); a new spare is started for the next run."""
    tracker = session.init_hook
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # wait until the spare is up
        spare = tracker._spare  # type: ignore[union-attr]
        if spare is not None and spare.is_alive():
            break
        time.sleep(0.05)
    assert spare is not None
    run_cell(shell, "run = nbtrack.init()")
    run = shell.user_ns["run"]
    assert run._connection.process is spare
    run.finish()
    assert tracker._spare is not spare  # type: ignore[union-attr]


def test_rerunning_a_cell_finishes_its_previous_run(shell: InteractiveShell) -> None:
    cell = "run = nbtrack.init()\nrun.log({'x': 1})"
    run_cell(shell, cell)
    first = shell.user_ns["run"]
    run_cell(shell, cell)
    second = shell.user_ns["run"]
    assert first.finished and first.state == "finished"
    assert not second.finished
    run_cell(shell, "runs = [nbtrack.init() for _ in range(3)]")  # several live runs in one cell
    assert all(not r.finished for r in shell.user_ns["runs"])
    shell.run_cell("%unload_ext nbtrack")  # finishes everything still live
    assert second.finished and all(r.finished for r in shell.user_ns["runs"])
    shell.run_cell("%load_ext nbtrack")


@pytest.mark.parametrize("replaceable", [True, False])
def test_cell_hooks_never_raise_whatever_state_the_run_is_in(
    shell: InteractiveShell, replaceable: bool
) -> None:
    from nbtrack.transport.restart import MAX_RESTARTS

    run_cell(shell, "run = nbtrack.init()")
    run = shell.user_ns["run"]
    if not replaceable:
        run._connection.restarts = MAX_RESTARTS
    run._connection.process.kill()  # a dead internal process: replaced, or (budget spent) gone for good
    deadline = time.monotonic() + 10
    while not replaceable and run._connection.lost_reason is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the results thread sees the end of result_pipe
    tracker = session.init_hook
    tracker.pre_run_cell(object(), 1, x=2)  # type: ignore[union-attr]
    tracker.post_run_cell()  # type: ignore[union-attr]
    result = shell.run_cell("1 + 1")
    assert result.success and result.result == 2
    result = shell.run_cell("run.log({'a': 1})")  # stored by the new process, or reported lost
    assert result.success and run.rows_lost == (0 if replaceable else 1)


def test_magic_status_and_finish(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    run_cell(shell, "%nbtrack")
    assert "no runs in this kernel yet" in capsys.readouterr().out
    run_cell(shell, "a = nbtrack.init(name='alpha')\nb = nbtrack.init(name='beta')")
    run_cell(shell, "%nbtrack")
    table = capsys.readouterr().out
    assert "alpha" in table and "beta" in table and "running" in table
    run_cell(shell, "%nbtrack finish alpha")
    assert shell.user_ns["a"].finished and not shell.user_ns["b"].finished
    run_cell(shell, "%nbtrack finish")
    assert shell.user_ns["b"].finished
    with pytest.raises(UsageError, match="no live run 'gamma'"):
        shell.run_line_magic("nbtrack", "finish gamma")
    with pytest.raises(UsageError, match="unknown command 'frobnicate'"):
        shell.run_line_magic("nbtrack", "frobnicate")
    run_cell(shell, "%nbtrack --help")
    assert "%%nbtrack [options]" in capsys.readouterr().out


def test_cell_scoped_run(shell: InteractiveShell, root: Path) -> None:
    run_cell(shell, "%%nbtrack --name scoped --tags a,b\nfor i in range(5):\n    nbtrack.log({'i': i})")
    runs = session.init_hook.runs  # type: ignore[union-attr]
    scoped = runs[-1].run
    assert scoped.name == "scoped" and scoped.state == "finished"
    assert [r["i"] for r in stored_history(root, scoped.id)] == [0, 1, 2, 3, 4]
    assert stored_run(root, scoped.id).tags == ["a", "b"]
    shell.run_cell("%%nbtrack --name broken\nraise ValueError('boom')")
    assert session.init_hook.runs[-1].run.state == "failed"  # type: ignore[union-attr]
    with pytest.raises(UsageError, match="unrecognized arguments"):
        shell.run_cell_magic("nbtrack", "--bogus 1", "pass")


def test_config_mistakes_raise_usage_errors() -> None:
    from nbtrack.extension.config import NBTrack

    with pytest.raises(UsageError, match="not a mode"):
        NBTrack(mode="cloud")
    with pytest.raises(UsageError, match="live_interval"):
        NBTrack(live_interval=0.01)
    assert nbtrack.sdk.session.init_hook is None


def test_unload_says_what_it_waits_for(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    run_cell(shell, "run = nbtrack.init()\nfor i in range(300_000):\n    run.log({'i': i})")
    shell.run_cell("%unload_ext nbtrack")
    assert shell.user_ns["run"].state == "finished"
    assert "nbtrack: waiting up to 30 s for" in capsys.readouterr().err
    shell.run_cell("%load_ext nbtrack")

"""What a notebook user sees of `%nbtrack` and of a usage mistake, in a real ipykernel driven as a
front end would; the one-line display's install and uninstall in IPython's in-process shell; and a
plain script, which keeps the normal exception."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ipykernel")
from IPython.core.interactiveshell import InteractiveShell

from nbtrack.errors import UsageError
from tests.serving import subprocess_env
from tests.test_kernel import Kernel


class RepliedKernel(Kernel):
    """Kernel, but each execution's reply is the one to its own request: a reply to an earlier
    request (wait_for_ready may leave a kernel_info reply behind) is skipped, not taken for it."""

    def execute(self, code: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        msg_id = self.client.execute(code)
        deadline = time.monotonic() + timeout
        messages: list[dict[str, Any]] = []
        while True:
            message = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            mine = message["parent_header"].get("msg_id") == msg_id
            if mine and message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
            if mine:
                messages.append(message)
        while True:
            reply = self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"], messages


@pytest.fixture
def kernel(tmp_path: Path, root: Path) -> Iterator[Kernel]:
    k = RepliedKernel(tmp_path, root)
    reply, _ = k.execute("%load_ext nbtrack")
    assert reply["status"] == "ok", reply
    yield k
    k.close()


def outputs(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """What a cell printed (its stream text) and its error outputs."""
    text = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    return text, errors


def test_status_lists_every_run_of_the_kernel_newest_first(kernel: Kernel) -> None:
    for code in (
        "a = nbtrack.init(project='p', name='alpha'); a.finish()",
        "b = nbtrack.init(project='p', name='beta'); b.finish()",
        "c = nbtrack.init(project='q', name='gamma')",
    ):
        reply, _ = kernel.execute(code)
        assert reply["status"] == "ok", reply
    reply, messages = kernel.execute("%nbtrack")
    assert reply["status"] == "ok", reply
    text, _ = outputs(messages)
    lines = text.splitlines()
    assert lines[0].split() == ["id", "name", "project", "state", "rows", "cell"]
    listed = [line.split()[1:4] for line in lines[2:]]
    assert listed == [["gamma", "q", "running"], ["beta", "p", "finished"], ["alpha", "p", "finished"]]
    cells = [int(line.split()[-1].strip("[]")) for line in lines[2:]]
    assert cells == sorted(cells, reverse=True)  # each run names the cell that started it


def test_log_after_finish_shows_one_line_and_the_next_cell_works(kernel: Kernel) -> None:
    reply, _ = kernel.execute("run = nbtrack.init(project='p')\nrun.log({'x': 1})\nrun.finish()")
    assert reply["status"] == "ok", reply
    reply, messages = kernel.execute("x = 1\nrun.log({'x': 2})\n")
    text, errors = outputs(messages)
    assert reply["status"] == "error" and reply["ename"] == "UsageError", (reply, messages)
    assert len(errors) == 1
    (line,) = errors[0]["traceback"]
    assert line.startswith("UsageError: log(): run ") and "is finished" in line and "\n" not in line
    assert "nbtrack.init()" in line  # what to do instead
    assert reply["traceback"] == [line]
    assert "Traceback" not in text and "nbtrack/" not in text + line
    reply, _ = kernel.execute("assert x == 1\nrun2 = nbtrack.init(project='p'); run2.finish()")
    assert reply["status"] == "ok", reply


def test_other_errors_keep_their_traceback(kernel: Kernel) -> None:
    reply, messages = kernel.execute("run = nbtrack.init(project='p')\nrun.log({'x': object()})")
    _, errors = outputs(messages)
    assert reply["status"] == "error" and reply["ename"] == "TypeError"
    assert len(errors[0]["traceback"]) > 1  # a bad value is a bug in the caller's code: the full story


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.config.NBTrack.display = "none"
    ip.config.NBTrack.prewarm = False
    yield ip
    InteractiveShell.clear_instance()


def test_the_handler_is_taken_only_while_free_and_given_back(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell("%load_ext nbtrack")
    assert shell.custom_exceptions == (UsageError,)
    shell.run_cell("raise nbtrack.UsageError('a mistake,\\n said in two lines')")
    assert capsys.readouterr().out.strip() == "UsageError: a mistake, said in two lines"
    shell.run_cell("%unload_ext nbtrack")
    assert shell.custom_exceptions == ()

    def theirs(*args: Any, **kwargs: Any) -> list[str]:
        return ["their handler"]

    shell.set_custom_exc((KeyError,), theirs)
    shell.run_cell("%load_ext nbtrack")
    assert shell.custom_exceptions == (KeyError,)  # the user's handler stays, nbtrack's is not added
    shell.run_cell("%unload_ext nbtrack")
    assert shell.custom_exceptions == (KeyError,)


def test_a_script_keeps_the_normal_exception(tmp_path: Path, root: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import nbtrack\n"
        f"run = nbtrack.init(project='p', dir={str(root)!r})\n"
        "run.finish()\n"
        "run.log({'x': 1})\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=subprocess_env()
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "line 4, in <module>\n    run.log({'x': 1})" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("nbtrack.errors.UsageError: log(): run ")

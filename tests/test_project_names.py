"""Project names as W&B allows them (spaces, any Unicode; none of / \\ # ? % : nor a control
character): a run in such a project is written, read back and listed in local mode, through
`nbtrack server` (URLs quote it), and by the command line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbtrack
from tests.serving import ServerProcess, start_server

PROJECT = "my project é ✓"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    served = start_server(tmp_path / "server")
    yield served
    served.stop()


def test_a_local_run_in_a_spaced_unicode_project(root: Path, tmp_path: Path) -> None:
    weights = tmp_path / "w.txt"
    weights.write_text("w")
    with nbtrack.init(project=PROJECT, dir=root, id="spaced") as run:
        run.log({"x": 1.5})
        run.save(str(weights))
    api = nbtrack.Api(dir=root)
    assert PROJECT in [project.name for project in api.projects()]
    stored = api.run(f"{PROJECT}/spaced")
    assert stored.state == "finished" and [row["x"] for row in stored.history()] == [1.5]
    listed = subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", "runs", PROJECT, "--dir", str(root)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0 and "spaced" in listed.stdout, listed.stdout + listed.stderr


def test_an_online_run_in_a_spaced_unicode_project(server: ServerProcess, root: Path, tmp_path: Path) -> None:
    weights = tmp_path / "w.txt"
    weights.write_bytes(b"weights")
    with nbtrack.init(project=PROJECT, base_url=server.url, dir=root, id="online") as run:
        for i in range(3):
            run.log({"x": i})
        run.save(str(weights))
    stored = nbtrack.Api(base_url=server.url).run(f"{PROJECT}/online")
    assert stored.state == "finished" and [row["x"] for row in stored.history()] == [0, 1, 2]
    assert stored.file("w.txt") == b"weights"

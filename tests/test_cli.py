"""The `nbtrack` command, run as a user would: demo, runs, dump."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbtrack


def nbtrack_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", *args], capture_output=True, text=True, check=check
    )


def test_demo_runs_in_local_mode_and_reads_its_summary_back(root: Path) -> None:
    out = nbtrack_cli("demo", "--steps", "300", "--dir", str(root)).stdout
    assert "read back from the store" in out and "is finished, 300 history rows" in out
    assert "summary val/acc" in out and "transaction log:" in out
    runs = nbtrack_cli("runs", "demo", "--dir", str(root)).stdout
    assert "finished" in runs and "300" in runs
    projects = nbtrack_cli("runs", "--dir", str(root)).stdout
    assert "local/demo" in projects


def test_runs_without_a_store_says_what_to_do(root: Path) -> None:
    result = nbtrack_cli("runs", "--dir", str(root), check=False)
    assert result.returncode == 1 and "nbtrack demo" in result.stderr


def test_dump_prints_every_record_and_reports_damage(root: Path) -> None:
    with nbtrack.init(project="test", dir=root, mode="offline") as run:
        for i in range(3):
            run.log({"x": i})
    log = next(run.dir.glob("*.nbt"))
    records = [json.loads(line) for line in nbtrack_cli("dump", str(log)).stdout.splitlines()]
    kinds = [next(k for k in r if k not in ("num", "control")) for r in records]
    assert kinds[0] == "header" and kinds[1] == "run" and kinds[-3:] == ["exit", "final", "footer"]
    assert [r["history"]["data_json"]["x"] for r in records if "history" in r] == [0, 1, 2]

    data = bytearray(log.read_bytes())
    data[40] ^= 0xFF  # damage the run record
    log.write_bytes(bytes(data))
    result = nbtrack_cli("dump", str(log))
    assert "corruption" in result.stderr and "bad checksum" in result.stderr

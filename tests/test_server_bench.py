"""The server benchmark still runs end to end (a smoke run; its figures are not judged here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.wandb_client import WANDB_PYTHON, require_wandb

pytestmark = pytest.mark.bench_smoke

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_server.py"


def test_bench_server_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for row in ("sqlite", "ingest", "full history", "history(samples: 1000)", "chart (5 keys)", "target"):
        assert row in result.stdout


WANDB_BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_wandb_api.py"


def test_bench_wandb_api_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    require_wandb()
    env = {**os.environ, "NBTRACK_TEST_WANDB_PYTHON": str(WANDB_PYTHON)}
    result = subprocess.run(
        [sys.executable, str(WANDB_BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for row in ("sqlite", "runs", "run", "history(500)", "full history", "client nbtrack", "server nbtrack"):
        assert row in result.stdout
    assert "wandb skipped" not in result.stdout


EXPORT_BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_history_export.py"


def test_bench_history_export_quick_runs_and_prints_its_figures(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXPORT_BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ingest: 20000 rows" in result.stdout and "export (SQLite): 20000 rows" in result.stdout
    assert "rows/s" in result.stdout and "server RSS" in result.stdout


SCALE_BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_scale.py"


def test_bench_scale_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    if not os.environ.get("NBTRACK_TEST_POSTGRES_URL"):
        pytest.skip("bench_scale needs PostgreSQL: set NBTRACK_TEST_POSTGRES_URL")
    result = subprocess.run(
        [sys.executable, str(SCALE_BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for row in (
        "saturation",
        "offered 2k rows/s",
        "replica killed",
        "rows lost (saturation): 0",
        "rows lost (offered 2k rows/s): 0",
        "rows lost (replica killed): 0",
    ):
        assert row in result.stdout

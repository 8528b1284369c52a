"""The server benchmark still runs end to end (a smoke run; its figures are not judged here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench_smoke

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_server.py"


def test_bench_server_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for row in ("sqlite", "ingest", "full history", "history(samples: 1000)", "chart (5 keys)", "target"):
        assert row in result.stdout

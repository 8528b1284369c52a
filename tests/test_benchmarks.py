"""The benchmark scripts still run end to end (smoke runs; their figures are not judged here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
BENCH = BENCHMARKS / "bench_core.py"


def test_bench_core_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for row in ("log() per call", "init()", "into the store", "internal process peak RSS", "targets"):
        assert row in result.stdout


def test_bench_online_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_online.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for row in ("log() per call", "finish() straight after the loop", "end to end", "server down"):
        assert row in result.stdout


def test_bench_stats_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_stats.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for row in ("sample() alone", "in a run", "% core @ 5 s"):
        assert row in result.stdout


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed")
def test_bench_ui_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    pytest.importorskip("playwright.sync_api")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_ui.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for row in ("server: run page queries", "browser: navigation to charts drawn", "50,000 history rows"):
        assert row in result.stdout


def test_bench_kernel_small_runs_and_prints_its_table(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_kernel.py"), "--repeats", "1", "--rows", "2000"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for row in (
        "init() in a kernel",
        "panel updates per second",
        "log() per call in a cell",
        "console capture",
    ):
        assert row in result.stdout

"""The benchmark scripts still run end to end (smoke runs; their figures are not judged here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.wandb_client import WANDB_PYTHON

pytestmark = pytest.mark.bench_smoke

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def smoke(tmp_path: Path, script: str, *args: str, timeout: float, rows: tuple[str, ...]) -> None:
    """Run a benchmark in a fresh folder: it must exit 0 and print each of its table's rows."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    missing = [row for row in rows if row not in result.stdout]
    assert not missing, f"{script} printed no {missing}:\n{result.stdout}"


def test_bench_core_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    rows = ("log() per call", "init()", "into the store", "internal process peak RSS", "targets")
    smoke(tmp_path, "bench_core.py", "--quick", timeout=300, rows=rows)


def test_bench_memory_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    rows = ("user process peak growth", "rows in the spill file", "every row stored in both: yes")
    smoke(tmp_path, "bench_memory.py", "--quick", timeout=300, rows=rows)


def test_bench_online_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    rows = ("log() per call", "finish() straight after the loop", "end to end", "server down")
    smoke(tmp_path, "bench_online.py", "--quick", timeout=300, rows=rows)


def test_bench_stats_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    smoke(
        tmp_path,
        "bench_stats.py",
        "--quick",
        timeout=120,
        rows=("sample() alone", "in a run", "% core @ 5 s"),
    )


def test_bench_explorer_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    rows = ("folder: compare() view made", "server: view synced (JSON)", "static snapshot")
    smoke(tmp_path, "bench_explorer.py", "--quick", timeout=300, rows=rows)


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed")
def test_bench_ui_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    pytest.importorskip("playwright.sync_api")
    rows = (
        "server: run page queries",
        "browser: navigation to charts drawn",
        "browser: charts drawn, smoothing on",
        "redraw every chart, smoothing 0.6",
        "50,000 history rows",
    )
    smoke(tmp_path, "bench_ui.py", "--quick", timeout=180, rows=rows)


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed")
def test_bench_runs_table_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    pytest.importorskip("playwright.sync_api")
    rows = (
        "a project of 60 runs",
        "browser: navigation to page drawn",
        "tick one run (table + views)",
        "group by a config key",
        "server: search, every run read",
    )
    smoke(tmp_path, "bench_runs_table.py", "--quick", timeout=180, rows=rows)


def test_bench_kernel_small_runs_and_prints_its_table(tmp_path: Path) -> None:
    rows = ("init() in a kernel", "panel updates per second", "log() per call in a cell", "console capture")
    smoke(tmp_path, "bench_kernel.py", "--repeats", "1", "--rows", "2000", timeout=300, rows=rows)


def test_bench_big_rows_small_runs_and_prints_its_table(tmp_path: Path) -> None:
    rows = ("recover  peak RSS", "sync     peak RSS", "live     peak RSS", "rows stored 20 of 20")
    smoke(tmp_path, "bench_big_rows.py", "--rows", "20", "--row-mb", "1", timeout=300, rows=rows)


def test_bench_console_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    rows = (
        "stdout a file",
        "stdout a terminal (pty)",
        "lines stored",
        "every flood line stored or counted: yes",
    )
    smoke(tmp_path, "bench_console.py", "--quick", timeout=300, rows=rows)


def test_bench_compaction_quick_runs_and_prints_its_table(tmp_path: Path) -> None:
    rows = ("SQLite + folder         |     20,000", "rows/parquet", "database before -> after")
    smoke(tmp_path, "bench_compaction.py", "--quick", timeout=300, rows=rows)


def test_bench_artifacts_quick_runs_and_prints_its_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = (
        "build the artifact (add_dir: hash) (s)",
        "download to a fresh folder (s)",
        "every nbtrack process under 100 MB: yes",
        "every download identical to the source: yes",
    )
    if WANDB_PYTHON.exists():  # wandb's columns too (clean_env removed the variable naming it)
        monkeypatch.setenv("NBTRACK_TEST_WANDB_PYTHON", str(WANDB_PYTHON))
        rows += (f"wandb from {WANDB_PYTHON}",)
    else:
        rows += ("wandb's columns skipped",)
    smoke(tmp_path, "bench_artifacts.py", "--quick", timeout=300, rows=rows)

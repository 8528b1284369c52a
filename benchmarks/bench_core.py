"""Side-by-side benchmark of the logging path: nbtrack (local, offline), a JSON-lines file, wandb offline.

    python benchmarks/bench_core.py [--rows 100000] [--repeats 3] [--quick] [--json OUT] [--baseline DIR]

--baseline DIR adds two columns, nbtrack local and offline imported from DIR (a checkout of an
earlier commit: `git worktree add /tmp/base REV`), measured interleaved with the others in the
same run, so that a change's cost is a ratio on one noisy machine rather than two tables.

Each contender runs in a fresh subprocess per repeat (this script with --child), so imports, caches
and RSS start clean. The parent samples the peak RSS of each child's helper processes from outside,
so the timed loop is not disturbed, and prints medians. benchmarks/README.md explains every row.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

COLUMNS = {"jsonl": "JSONL baseline", "local": "nbtrack local", "offline": "nbtrack offline"}
WANDB_COLUMN = "wandb offline"
MODULES = {"jsonl": "json", "local": "nbtrack", "offline": "nbtrack", "wandb": "wandb"}
WANDB_NOTE = "wandb not installed: skipped (pip install wandb==0.31.0 to compare)"
RESULT_MARK = "BENCH_RESULT "
POLL_SECONDS = 0.002  # status() polling while the rows land
SAMPLE_SECONDS = 0.01  # helper-process RSS sampling, from the parent
DRAIN_TIMEOUT = 300.0
MB = 1_000_000

ROWS = [  # (metric, label): medians over the repeats
    ("import_ms", "1  import, fresh interpreter (ms)"),
    ("init_ms", "2  init(), fresh process (ms)"),
    ("log_us", "3  log() per call, loop only (µs)"),
    ("logged_ms", "4a after loop: all rows in the log (ms)"),
    ("stored_ms", "4b after loop: all rows in the store (ms)"),
    ("finish_ms", "5a finish() once rows landed (ms)"),
    ("finish_direct_ms", "5b finish() straight after loop (ms)"),
    ("log_krps", "6a into the log: N/(3+4a) (k rows/s)"),
    ("store_krps", "6b into the store: N/(3+4b) (k rows/s)"),
    ("e2e_krps", "6c loop + finish: N/(3+5b) (k rows/s)"),
    ("user_mb", "7a user process peak growth (MB)"),
    ("internal_mb", "7b internal process peak RSS (MB)"),
    ("helpers_mb", "7c all helper processes, peaks (MB)"),
]
NOTES = """\
4a: nbtrack: status().rows_logged == N (the handler committed every row and handed it to the writer,
    which appends within ~20 ms and fsyncs at finish). JSONL: flush + fsync. wandb: no such API.
4b: nbtrack local: status().rows_stored == N (every row is in the log and in the SQLite store).
5a: finish() after 4a/4b: final fsync, summary, process exit; JSONL: close(). 5b: a second run calls
    finish() right after the loop, so it includes the drain (JSONL: fsync + close).
7a: peak RSS over loop + drain + finish minus RSS before the loop (the rows are built before it).
7b: nbtrack: run._connection.process; wandb: wandb-core. 7c: every descendant process, sum of their peaks
    (nbtrack: + multiprocessing's resource tracker; wandb: + wandb-symon). 1 MB = 10^6 bytes."""
BOTH = ("local", "offline")
BASELINE = "@baseline"  # suffix of a contender imported from --baseline DIR
_baseline_dir: Path | None = None
TARGETS = [  # (label, metric, limit, higher is better, nbtrack columns it applies to)
    ("log() <= 5 µs per call", "log_us", 5.0, False, BOTH),
    (">= 100k rows/s into the log (6a)", "log_krps", 100.0, True, BOTH),
    (">= 50k rows/s into the store (6b)", "store_krps", 50.0, True, ("local",)),
    ("init() <= 300 ms cold", "init_ms", 300.0, False, BOTH),
    ("finish() <= 300 ms, straight after (5b)", "finish_direct_ms", 300.0, False, BOTH),
    ("finish() <= 300 ms, rows landed (5a)", "finish_ms", 300.0, False, BOTH),
    ("internal process peak <= 80 MB", "internal_mb", 80.0, False, BOTH),
    ("user process growth <= 20 MB", "user_mb", 20.0, False, BOTH),
]


# -- child side: one contender, one repeat ----------------------------------------------------------


def _vm_hwm(pid: int | str) -> int | None:
    """The kernel's peak RSS of a process in bytes (Linux), or None where it cannot be read."""
    try:
        match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


class _UserPeak:
    """Peak RSS growth of this process from now on (Linux: the kernel's high-water mark, reset)."""

    def __init__(self) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self._exact = _vm_hwm("self") is not None
        except OSError:
            self._exact = False  # then only "after minus before" can be told
        self._before = psutil.Process().memory_info().rss

    def growth(self) -> int:
        peak = _vm_hwm("self") if self._exact else None
        return (peak or psutil.Process().memory_info().rss) - self._before


def _child_jsonl(rows: list[dict[str, float]], workdir: Path) -> dict[str, Any]:
    start = time.perf_counter()
    f = open(workdir / "rows.jsonl", "w", encoding="utf-8")  # noqa: SIM115 - the open is what is timed
    out: dict[str, Any] = {"init_s": time.perf_counter() - start, "internal_pids": []}
    peak = _UserPeak()
    start = time.perf_counter()
    for row in rows:
        f.write(json.dumps(row) + "\n")
    t_loop = time.perf_counter()
    f.flush()
    os.fsync(f.fileno())
    t_synced = time.perf_counter()
    f.close()
    t_end = time.perf_counter()
    out.update(loop_s=t_loop - start, logged_s=t_synced - t_loop, finish_s=t_end - t_synced)
    return out | {"finish_direct_s": t_end - t_loop, "user_growth_b": peak.growth()}


def _wait_for_rows(run: Any, n: int, to_store: bool) -> tuple[float, float | None]:
    """Poll status() until the handler committed n rows (and, to_store, the store holds them)."""
    import nbtrack

    start = time.perf_counter()
    logged: float | None = None
    while time.perf_counter() - start < DRAIN_TIMEOUT:
        try:
            status = run.status()
        except nbtrack.InternalProcessError:  # its 10 s timeout while the handler catches up
            if not run._connection.process.is_alive():
                raise
            continue
        now = time.perf_counter() - start
        if logged is None and status.rows_logged >= n:
            logged = now
        if logged is not None and (not to_store or status.rows_stored >= n):
            return logged, now if to_store else None
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"the rows did not land within {DRAIN_TIMEOUT:g} s")


def _child_nbtrack(mode: str, rows: list[dict[str, float]], workdir: Path, direct: bool) -> dict[str, Any]:
    import nbtrack

    start = time.perf_counter()
    run = nbtrack.init(project="bench", dir=workdir, mode=mode)
    # An older checkout (--baseline) kept its process on the run itself.
    connection = getattr(run, "_connection", None)
    process = connection.process if connection is not None else getattr(run, "_process", None)
    pids = [process.pid] if process is not None else []
    out: dict[str, Any] = {"init_s": time.perf_counter() - start, "internal_pids": pids}
    peak = _UserPeak()
    start = time.perf_counter()
    for row in rows:
        run.log(row)
    t_loop = time.perf_counter()
    if direct:  # 5b: what a script that just calls finish() waits
        run.finish()
        out["finish_direct_s"] = time.perf_counter() - t_loop
    else:
        out["logged_s"], out["stored_s"] = _wait_for_rows(run, len(rows), to_store=mode == "local")
        t_landed = time.perf_counter()
        run.finish()
        out["finish_s"] = time.perf_counter() - t_landed
    out.update(loop_s=t_loop - start, user_growth_b=peak.growth(), state=run.state, lost=run.rows_lost)
    return out


def _child_wandb(rows: list[dict[str, float]], workdir: Path) -> dict[str, Any]:
    import wandb

    start = time.perf_counter()
    run = wandb.init(project="bench", dir=str(workdir), mode="offline")
    out: dict[str, Any] = {"init_s": time.perf_counter() - start}
    helpers = psutil.Process().children(recursive=True)
    out["internal_pids"] = [p.pid for p in helpers if p.name().startswith("wandb-core")]
    peak = _UserPeak()
    start = time.perf_counter()
    for row in rows:
        run.log(row)
    t_loop = time.perf_counter()
    run.finish()
    out.update(loop_s=t_loop - start, finish_direct_s=time.perf_counter() - t_loop)
    return out | {"user_growth_b": peak.growth()}


def child(name: str, n: int, workdir: Path, direct: bool) -> dict[str, Any]:
    rows = [{f"m{j}": (i * 10 + j) * 1e-3 for j in range(10)} for i in range(n)]  # outside every timer
    if name == "jsonl":
        return _child_jsonl(rows, workdir)
    if name == "wandb":
        return _child_wandb(rows, workdir)
    return _child_nbtrack(name, rows, workdir, direct)


# -- parent side: run the children, aggregate, print ------------------------------------------------


class HelperPeaks(threading.Thread):
    """Peak RSS of each descendant of one process: VmHWM (else RSS) every 10 ms, new pids every 100 ms."""

    def __init__(self, root: int) -> None:
        super().__init__(name="helper-peaks", daemon=True)
        self._root = psutil.Process(root)
        self.peaks: dict[int, int] = {}
        self.done = threading.Event()

    def run(self) -> None:
        procs: dict[int, psutil.Process] = {}
        for tick in range(sys.maxsize):
            if self.done.wait(SAMPLE_SECONDS):
                return
            if tick % 10 == 0:
                with contextlib.suppress(psutil.Error):
                    procs.update((p.pid, p) for p in self._root.children(recursive=True))
            for pid, proc in procs.items():
                rss = _vm_hwm(pid)
                if rss is None:
                    try:
                        rss = proc.memory_info().rss
                    except psutil.Error:
                        continue
                self.peaks[pid] = max(rss, self.peaks.get(pid, 0))


def _env(tmp: str, baseline: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACK_", "WANDB_"))}
    if baseline and _baseline_dir is not None:  # before the installed checkout on sys.path
        env["PYTHONPATH"] = str(_baseline_dir)
    wandb_dirs = ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR")
    return env | dict.fromkeys(wandb_dirs, tmp) | {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def _spawn(args: list[str], tmp: str, baseline: bool = False) -> subprocess.Popen[str]:
    # cwd is a fresh folder, not a git checkout: wandb would spend its init on collecting git state.
    pipe = subprocess.PIPE
    env = _env(tmp, baseline)
    return subprocess.Popen([sys.executable, *args], stdout=pipe, stderr=pipe, text=True, env=env, cwd=tmp)


def import_seconds(module: str, baseline: bool = False) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    with tempfile.TemporaryDirectory(prefix="bench-core-") as tmp:
        stdout, stderr = (proc := _spawn(["-c", code], tmp, baseline)).communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"import {module} failed: {stderr.strip()[-2000:]}")
    return float(stdout.split()[-1])


def run_child(name: str, n: int, direct: bool = False) -> dict[str, Any]:
    """One fresh subprocess for one contender; RuntimeError with its stderr if it failed."""
    contender, baseline = name.removesuffix(BASELINE), name.endswith(BASELINE)
    with tempfile.TemporaryDirectory(prefix="bench-core-") as tmp:
        args = [str(Path(__file__).resolve()), "--child", contender, "--rows", str(n), "--dir", tmp]
        proc = _spawn(args + (["--direct-finish"] if direct else []), tmp, baseline)
        sampler = HelperPeaks(proc.pid)
        sampler.start()
        stdout, stderr = proc.communicate()
        sampler.done.set()
        sampler.join()
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{name} child exited {proc.returncode}: {stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_MARK) :])
    internal = [sampler.peaks[pid] for pid in result["internal_pids"] if pid in sampler.peaks]
    result["internal_peak_b"] = sum(internal) if internal else None
    result["helpers_peak_b"] = sum(sampler.peaks.values()) if sampler.peaks else None
    return result


def derive(r: dict[str, Any], n: int) -> dict[str, float | None]:
    """One repeat's table values from a child's raw seconds and bytes."""

    def scaled(key: str, factor: float) -> float | None:
        return None if r.get(key) is None else r[key] * factor

    def krps(loop: float, extra: float | None) -> float | None:
        return None if extra is None else n / (loop + extra) / 1e3

    loop = r["loop_s"]
    return {
        "import_ms": r["import_s"] * 1e3,
        "init_ms": r["init_s"] * 1e3,
        "log_us": loop / n * 1e6,
        **{f"{key[:-2]}_ms": scaled(key, 1e3) for key in ("logged_s", "stored_s", "finish_s")},
        "finish_direct_ms": scaled("finish_direct_s", 1e3),
        "log_krps": krps(loop, r.get("logged_s")),
        "store_krps": krps(loop, r.get("stored_s")),
        "e2e_krps": krps(r.get("direct_loop_s", loop), r.get("finish_direct_s")),
        "user_mb": r["user_growth_b"] / MB,
        "internal_mb": scaled("internal_peak_b", 1 / MB),
        "helpers_mb": scaled("helpers_peak_b", 1 / MB),
    }


def medians_of(results: list[dict[str, Any]], n: int) -> dict[str, float | None]:
    derived = [derive(r, n) for r in results]
    present = {key: [v for d in derived if (v := d[key]) is not None] for key, _ in ROWS}
    return {key: statistics.median(values) if values else None for key, values in present.items()}


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def print_table(medians: dict[str, dict[str, float | None]], n: int, repeats: int) -> None:
    labels = COLUMNS | {"wandb": WANDB_COLUMN} | {f"{k}{BASELINE}": f"{k} @ baseline" for k in BOTH}
    width = max(len(text) for _, text in ROWS)
    print(f"\n{n:,} log() calls of 10 floats; median of {repeats}; (Nx) = value / JSONL baseline\n")
    print(f"{'metric':<{width}} | " + " | ".join(f"{labels[name]:<19}" for name in medians))
    print("-" * width + "-+-" + "-+-".join("-" * 19 for _ in medians))
    for key, text in ROWS:
        base, cells = medians["jsonl"][key], []
        for name, values in medians.items():
            cell, value = _num(values[key]), values[key]
            if name != "jsonl" and value is not None and base:
                cell += f" ({_num(value / base)}x)"
            cells.append(f"{cell:<19}")
        print(f"{text:<{width}} | " + " | ".join(cells))
    print("\n" + NOTES)


def print_targets(medians: dict[str, dict[str, float | None]], n: int) -> None:
    caveat = "" if n == 100_000 else f" (NOTE: they are set for 100,000 rows; this run logged {n:,})"
    print(f"\ntargets from issue 2, for this 2-core machine{caveat}")
    for text, key, limit, higher, names in TARGETS:
        verdicts = []
        for name in names:
            value = medians.get(name, {}).get(key)
            if value is None:
                verdicts.append(f"{COLUMNS[name]}: n/a")
                continue
            ok = value >= limit if higher else value <= limit
            how = ("above" if higher else "under") if ok else ("short" if higher else "over")
            margin = f"{_num(abs(value - limit) / limit * 100)}% {how}"
            verdicts.append(f"{COLUMNS[name]}: {'PASS' if ok else 'MISS'} {_num(value)} ({margin})")
        print(f"  {text:<41} " + "   ".join(verdicts))


def measure(names: list[str], n: int, repeats: int) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Every contender once per repeat, interleaved so that drift hits all alike."""
    raw: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    failures = []
    for repeat in range(repeats):
        for name in names:
            print(f"  repeat {repeat + 1}/{repeats}: {name}", file=sys.stderr, flush=True)
            try:
                result = run_child(name, n)
                contender = name.removesuffix(BASELINE)
                if contender in BOTH:  # 5b needs a run of its own: finish() with no wait before it
                    direct = run_child(name, n, direct=True)
                    result.update(finish_direct_s=direct["finish_direct_s"], direct_loop_s=direct["loop_s"])
                result["import_s"] = import_seconds(MODULES[contender], name.endswith(BASELINE))
            except RuntimeError as exc:
                failures.append(f"{name}: {exc}")
                continue
            if result.get("lost") or result.get("state", "finished") != "finished":
                failures.append(f"{name}: the run ended {result['state']} with {result['lost']} rows lost")
            raw[name].append(result)
    return raw, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="log() calls per run (100,000)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh runs per contender (median shown)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10,000 rows, 1 repeat")
    parser.add_argument("--json", type=Path, help="also write every repeat's raw measurements here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--direct-finish", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", type=Path, help="also measure nbtrack imported from this checkout")
    args = parser.parse_args()
    global _baseline_dir
    _baseline_dir = args.baseline.resolve() if args.baseline else None
    if args.child:
        result = child(args.child, args.rows, args.dir, args.direct_finish)
        print(RESULT_MARK + json.dumps(result), flush=True)
        return 0
    n, repeats = (10_000, 1) if args.quick else (args.rows, args.repeats)
    has_wandb = importlib.util.find_spec("wandb") is not None
    names = [*COLUMNS, *(["wandb"] if has_wandb else [])]
    if _baseline_dir is not None:
        names += [f"{name}{BASELINE}" for name in BOTH]
        print(f"baseline: nbtrack from {_baseline_dir}", file=sys.stderr)
    wandb_version = importlib.metadata.version("wandb") if has_wandb else "not installed"
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"
    print(
        f"bench_core {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, {machine}, ",
        end="",
    )
    print(f"wandb {wandb_version}", flush=True)
    for name in names:  # untimed: writes any missing .pyc file
        import_seconds(MODULES[name.removesuffix(BASELINE)], name.endswith(BASELINE))
    raw, failures = measure(names, n, repeats)
    medians = {name: medians_of(results, n) for name, results in raw.items() if results}
    if args.json:
        report = {"rows": n, "repeats": repeats, "raw": raw, "medians": medians}
        args.json.write_text(json.dumps(report, indent=1))
    if "jsonl" in medians:
        print_table(medians, n, repeats)
        print_targets(medians, n)
    if not has_wandb:
        print("\n" + WANDB_NOTE)
    for failure in failures:  # wandb is optional: its failures are reported, not fatal
        print(f"\n{'NOTE' if failure.startswith('wandb') else 'FAILED'}: {failure}")
    fatal = [f for f in failures if not f.startswith("wandb")]
    return 1 if fatal or "jsonl" not in medians else 0


if __name__ == "__main__":
    sys.exit(main())

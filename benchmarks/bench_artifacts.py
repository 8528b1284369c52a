"""Logging and downloading a 1 GB artifact of 1,000 files: nbtrack beside wandb, on the same files.

    python benchmarks/bench_artifacts.py [--size-mb 1000] [--files 1000] [--quick]

The files (random bytes, sizes spread log-normally, in 10 sub-folders) are written once into a
temporary folder. Each phase then runs in a fresh process of its own, so that imports count and
its peak RSS (VmHWM, the kernel's high-water mark) is the phase's alone; the parent samples the
peak of every process the phase starts (nbtrack's internal process, wandb-core) and of the server.

    nbtrack          build: nbtrack.Artifact + add_dir (every file hashed)
    nbtrack local    log: nbtrack.init(dir=ROOT) + add_dir + run.log_artifact + finish() (which
                          returns once the version is in the store)
                     download: Api(dir=ROOT).artifact("bench/data:v0").download(fresh folder)
    nbtrack offline  log: the same with mode="offline" (the files staged for `nbtrack sync`)
    wandb            build: wandb.Artifact + add_dir
    wandb offline    log: wandb.init(mode="offline") + add_dir + log_artifact + finish()
    nbtrack online   log: the same with mode="online", against a fresh `nbtrack server` on a
                          loopback port (finish() returns once the server committed the version)
                     download: Api(base_url=...).artifact(...).download(fresh folder)
    wandb online     log: the same, against a fresh `nbtrack server` of its own
                     download: wandb.Api().artifact(...).download(fresh folder), a fresh cache

Every download is checked afterwards (outside the timers): the folder's files hash to the
source's manifest digest. The real wandb client runs in its own venv (NBTRACK_TEST_WANDB_PYTHON,
else .venv-wandb/bin/python); without it its columns are skipped. 1 MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.serving starts the server
if TYPE_CHECKING:  # the parent's modules, imported where used: a phase's process holds only its own
    import psutil

    from tests.serving import ServerProcess

REPO = Path(__file__).resolve().parent.parent
RESULT_MARK = "BENCH_RESULT "
MB = 1_000_000
SAMPLE_SECONDS = 0.02  # the parent's RSS sampling of a phase's processes
PHASE_TIMEOUT = 1800.0
PROJECT, NAME = "bench", "data"
RSS_BOUND_MB = 100.0  # issue 16: each of nbtrack's processes stays under this


# -- the files ---------------------------------------------------------------------------------------


def make_files(root: Path, total: int, count: int, seed: int = 16) -> None:
    """count files of random bytes summing to total, sizes log-normal (a few big, many small)."""
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0.0, 1.2) for _ in range(count)]
    sizes = [int(total * w / sum(weights)) for w in weights]
    sizes[0] += total - sum(sizes)  # the rounding's remainder
    for i, size in enumerate(sizes):
        path = root / f"part{i % 10:02d}" / f"file{i:04d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            left = size
            while left:  # 1 MiB at a time: the generator's memory stays small too
                block = os.urandom(min(left, 1 << 20))
                out.write(block)
                left -= len(block)


def tree_digest(root: Path) -> tuple[str, int, int]:
    """(manifest digest, files, bytes) of every file under root, as nbtrack hashes an artifact."""
    import nbtrack

    art = nbtrack.Artifact(NAME, type="dataset")
    art.add_dir(root)
    return art.digest, len(art.files()), art.manifest.size()


# -- the phases, each in a process of its own ----------------------------------------------------------


def own_peak() -> int:
    """This process's peak RSS so far, in bytes (VmHWM)."""
    match = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
    return int(match.group(1)) * 1024 if match else 0


def child_nbtrack(phase: str, src: Path, root: Path, out: Path) -> dict[str, Any]:
    """One nbtrack phase (B_URL and B_KEY in the environment: against that server)."""
    started = time.perf_counter()
    import nbtrack

    url, key = os.environ.get("B_URL"), os.environ.get("B_KEY")
    ref = f"{PROJECT}/{NAME}:v0"
    if phase == "build":
        art = nbtrack.Artifact(NAME, type="dataset")
        art.add_dir(src)
        return {"seconds": time.perf_counter() - started, "digest": art.digest}
    if phase == "download":
        stored = _api(url, key, root).artifact(ref)
        stored.download(out)
        return {"seconds": time.perf_counter() - started, "digest": stored.digest}
    mode = "online" if url else phase
    run = nbtrack.init(project=PROJECT, dir=root, mode=mode, base_url=url, api_key=key)
    assert run._connection is not None
    internal_pid = run._connection.process.pid
    art = nbtrack.Artifact(NAME, type="dataset")
    art.add_dir(src)
    built = time.perf_counter()
    run.log_artifact(art)
    run.finish()
    done = time.perf_counter()
    if mode != "offline":  # finish() returned: the version is stored, the files it lists too
        stored = _api(url, key, root).artifact(ref)
        assert stored.digest == art.digest, (stored.digest, art.digest)
    return {
        "seconds": done - started,
        "tail_seconds": done - built,
        "digest": art.digest,
        "internal_pid": internal_pid,
    }


def _api(url: str | None, key: str | None, root: Path) -> Any:
    import nbtrack

    return nbtrack.Api(base_url=url, api_key=key) if url else nbtrack.Api(dir=root)


# Run by the wandb venv's python; B_PHASE, B_SRC, B_OUT, B_REF in its environment.
WANDB_CHILD = """
import json, os, re, time
started = time.perf_counter()
import wandb

def own_peak():
    status = open("/proc/self/status").read()
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024

phase, src, out = os.environ["B_PHASE"], os.environ["B_SRC"], os.environ["B_OUT"]
result = {}
if phase == "build":
    art = wandb.Artifact("%(name)s", type="dataset")
    art.add_dir(src)
    result["digest"] = art.manifest.digest()
elif phase == "log":
    run = wandb.init(project="%(project)s")
    art = wandb.Artifact("%(name)s", type="dataset")
    art.add_dir(src)
    built = time.perf_counter()
    result["digest"] = art.manifest.digest()
    logged = run.log_artifact(art)
    if os.environ.get("WANDB_MODE") != "offline":
        logged.wait()
    run.finish()
    result["tail_seconds"] = time.perf_counter() - built
else:
    stored = wandb.Api(timeout=120).artifact(os.environ["B_REF"])
    stored.download(root=out)
    result["digest"] = stored.digest
result["seconds"] = time.perf_counter() - started
result["user_peak"] = own_peak()
print("%(mark)s" + json.dumps(result), flush=True)
"""


# -- the parent: run a phase, sample its processes' peaks --------------------------------------------


def _vm_hwm(pid: int) -> int | None:
    try:
        match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


class TreePeaks(threading.Thread):
    """The peak RSS (VmHWM) of a process and of each of its descendants, sampled from outside."""

    def __init__(self, root: int) -> None:
        import psutil

        super().__init__(name="tree-peaks", daemon=True)
        self._root = psutil.Process(root)
        self.peaks: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.done = threading.Event()

    def run(self) -> None:
        import psutil

        procs: dict[int, psutil.Process] = {self._root.pid: self._root}
        for tick in range(sys.maxsize):
            if tick % 5 == 0:
                with contextlib.suppress(psutil.Error):
                    procs.update((p.pid, p) for p in self._root.children(recursive=True))
            for pid, proc in procs.items():
                if pid not in self.names:
                    with contextlib.suppress(psutil.Error):
                        self.names[pid] = " ".join(proc.cmdline())[:200] or proc.name()
                peak = _vm_hwm(pid)
                if peak is not None:
                    self.peaks[pid] = max(peak, self.peaks.get(pid, 0))
            if self.done.wait(SAMPLE_SECONDS):
                return


@dataclass
class Phase:
    seconds: float
    digest: str
    user_peak: int  # bytes: the phase's own process
    internal_peak: int | None = None  # nbtrack's internal process, or wandb-core
    helpers_peak: int | None = None  # every other descendant, summed
    server_peak: int | None = None
    server_start: int | None = None  # the server's RSS as the phase began
    tail_seconds: float | None = None  # a log's log_artifact + finish() alone


def run_phase(argv: list[str], env: dict[str, str], cwd: Path, server: ServerProcess | None = None) -> Phase:
    """Run one phase's process; its result and the peaks of its processes (and the server's)."""
    server_pid = server.process.pid if server is not None and server.process is not None else None
    server_start = None
    if server_pid is not None:  # the server's high-water mark from now on: this phase's alone
        Path(f"/proc/{server_pid}/clear_refs").write_text("5")
        server_start = _vm_hwm(server_pid)
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreePeaks(proc.pid)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=PHASE_TIMEOUT)
    finally:
        sampler.done.set()
        sampler.join()
        if proc.poll() is None:
            proc.kill()
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{argv[-1][:60]!r} exited {proc.returncode}:\n{stdout[-2000:]}\n{stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_MARK) :])
    others = {pid: peak for pid, peak in sampler.peaks.items() if pid != proc.pid}
    internal = [
        peak
        for pid, peak in others.items()
        if pid == result.get("internal_pid") or "wandb-core" in sampler.names.get(pid, "")
    ]
    phase = Phase(
        seconds=result["seconds"],
        digest=result["digest"],
        user_peak=result.get("user_peak") or sampler.peaks.get(proc.pid, 0),
        internal_peak=sum(internal) if internal else None,
        helpers_peak=sum(others.values()) - sum(internal) if others else None,
        tail_seconds=result.get("tail_seconds"),
    )
    if server_pid is not None:
        phase.server_peak, phase.server_start = _vm_hwm(server_pid), server_start
    return phase


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "NBTRACK_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env | {"HOME": str(home)}


def nbtrack_phase(
    phase: str,
    src: Path,
    root: Path,
    out: Path,
    work: Path,
    server: ServerProcess | None = None,
    key: str = "",
) -> Phase:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", phase]
    argv += ["--src", str(src), "--root", str(root), "--out", str(out)]
    env = clean_env(work)
    if server is not None:
        env |= {"B_URL": server.url, "B_KEY": key}
    return run_phase(argv, env, work, server)


def wandb_python() -> Path | None:
    found = Path(os.environ.get("NBTRACK_TEST_WANDB_PYTHON") or REPO / ".venv-wandb" / "bin" / "python")
    return found if found.exists() else None


def wandb_phase(
    python: Path,
    phase: str,
    src: Path,
    home: Path,
    out: Path,
    server: ServerProcess | None = None,
    key: str = "",
    ref: str = "",
) -> Phase:
    """One wandb phase; offline unless server is given. Each phase has a fresh cache folder, so a
    download fetches every file from the server (not from what the log phase cached)."""
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=home))
    env = clean_env(home) | {
        "WANDB_DIR": str(home),
        "WANDB_CACHE_DIR": str(cache),
        "WANDB_CONFIG_DIR": str(home / "config"),
        "WANDB_DATA_DIR": str(cache / "data"),
        "WANDB_ARTIFACT_DIR": str(home / "artifacts"),
        "WANDB_SILENT": "true",
        "WANDB_DISABLE_GIT": "true",
        "WANDB_DISABLE_CODE": "true",
        "WANDB_ERROR_REPORTING": "false",
        "WANDB_CONSOLE": "off",
        "NO_PROXY": "127.0.0.1,localhost",
        "B_PHASE": phase,
        "B_SRC": str(src),
        "B_OUT": str(out),
        "B_REF": ref,
    }
    if server is None:
        env["WANDB_MODE"] = "offline"
    else:
        env |= {"WANDB_MODE": "online", "WANDB_BASE_URL": server.url, "WANDB_API_KEY": key}
    code = textwrap.dedent(WANDB_CHILD) % {"name": NAME, "project": PROJECT, "mark": RESULT_MARK}
    try:
        return run_phase([str(python), "-c", code], env, home, server)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


# -- the whole run, and its table ---------------------------------------------------------------------

Column = dict[str, Phase]  # "build" / "log" / "download": that phase's figures
ROWS = [  # (label, phase, figure)
    ("build the artifact (add_dir: hash) (s)", "build", "seconds"),
    ("  MB/s", "build", "rate"),
    ("  peak RSS of that process (MB)", "build", "user_peak"),
    ("log: init to finish() returned (s)", "log", "seconds"),
    ("  of which log_artifact + finish() (s)", "log", "tail_seconds"),
    ("  MB/s", "log", "rate"),
    ("  user process peak RSS (MB)", "log", "user_peak"),
    ("  internal process peak RSS (MB)", "log", "internal_peak"),
    ("  other helper processes (MB)", "log", "helpers_peak"),
    ("  server peak RSS (MB)", "log", "server_peak"),
    ("  server RSS as the phase began (MB)", "log", "server_start"),
    ("download to a fresh folder (s)", "download", "seconds"),
    ("  MB/s", "download", "rate"),
    ("  peak RSS of that process (MB)", "download", "user_peak"),
    ("  server peak RSS (MB)", "download", "server_peak"),
    ("  server RSS as the phase began (MB)", "download", "server_start"),
]
GROUPS = [  # a group of two: nbtrack's column, wandb's, and their ratio
    ("nbtrack local",),
    ("nbtrack offline", "wandb offline"),
    ("nbtrack online", "wandb online"),
]
NOTES = """\
ratio = nbtrack / wandb: seconds and RSS lower is better for nbtrack, MB/s higher. Every figure is
taken in its phase's own fresh process, from its first line (imports included). build: measured
once per client, shown in both of its columns. log: wandb copies the files into its staging
folder in add_dir, nbtrack into the run's folder in log_artifact, so compare the whole process
(its first line); nbtrack local's finish() returns once the version is in the store (its blobs:
hard links of the staged files, each MD5-checked); offline (both): the files are staged for a
later sync, nothing is stored. internal: nbtrack's internal process, or wandb-core; other
helpers: the phase's other processes (multiprocessing's resource tracker, wandb-symon).
download: into a fresh folder (wandb from a fresh cache; nbtrack checks each file's MD5 as it
writes it); afterwards, untimed, every downloaded folder is hashed and compared with the source.
1 MB = 10^6 bytes."""


def figure(column: Column, phase: str, name: str, size: int) -> float | None:
    found = column.get(phase)
    if found is None:
        return None
    if name == "rate":
        return size / MB / found.seconds
    value: float | None = getattr(found, name)
    if value is None:
        return None
    return value / MB if name.startswith(("user", "internal", "helpers", "server")) else value


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def medians(runs: list[dict[str, Column]]) -> dict[str, Column]:
    """Each figure's median over the repeats (None where no repeat has it)."""
    out: dict[str, Column] = {}
    for name, column in runs[0].items():
        for phase_name, first in column.items():
            taken = [run[name][phase_name] for run in runs if phase_name in run.get(name, {})]
            figures: dict[str, Any] = {"digest": first.digest}
            for number in (f.name for f in fields(Phase) if f.name != "digest"):
                values = [v for phase in taken if (v := getattr(phase, number)) is not None]
                figures[number] = statistics.median(values) if values else None
            out.setdefault(name, {})[phase_name] = Phase(**figures)
    return out


def print_table(columns: dict[str, Column], size: int, count: int, repeats: int) -> None:
    width = max(len(label) for label, _, _ in ROWS)
    head = f"{f'{size / MB:,.0f} MB in {count:,} files, median of {repeats}':{width}}"
    for group in GROUPS:
        head += (
            " |" + "".join(f" {name:>15}" for name in group) + (f" {'ratio':>6}" if len(group) == 2 else "")
        )
    print(head)
    print("-" * len(head))
    for label, phase, name in ROWS:
        line = f"{label:{width}}"
        for group in GROUPS:
            values = [figure(columns.get(column, {}), phase, name, size) for column in group]
            line += " |" + "".join(f" {_num(value):>15}" for value in values)
            if len(group) == 2:
                a, b = values
                line += f" {f'{a / b:.2f}' if a is not None and b else '-':>6}"
        print(line)
    print("\n" + NOTES)


def say(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def measure(src: Path, work: Path) -> tuple[dict[str, Column], list[str]]:
    from tests.serving import create_key, start_server

    columns: dict[str, Column] = {}
    notes: list[str] = []
    digest, _, _ = tree_digest(src)
    root, unused = work / "nbtrack-root", work / "unused"
    say("nbtrack: build")
    build = nbtrack_phase("build", src, root, unused, work)
    say("nbtrack local: log")
    log = nbtrack_phase("local", src, root, unused, work)
    say("nbtrack local: download")
    download = nbtrack_phase("download", src, root, work / "nbtrack-out", work)
    columns["nbtrack local"] = {"build": build, "log": log, "download": download}
    downloads = {"nbtrack local": work / "nbtrack-out"}
    say("nbtrack offline: log")
    columns["nbtrack offline"] = {"build": build, "log": nbtrack_phase("offline", src, root, unused, work)}
    server = start_server(work / "server-nbtrack")
    try:
        key = create_key(server, "bench")
        say("nbtrack online: log")
        log = nbtrack_phase("online", src, work / "online-root", unused, work, server, key)
        say("nbtrack online: download")
        out = work / "nbtrack-online-out"
        download = nbtrack_phase("download", src, root, out, work, server, key)
        columns["nbtrack online"] = {"build": build, "log": log, "download": download}
        downloads["nbtrack online"] = out
    finally:
        server.stop()
        shutil.rmtree(work / "server-nbtrack", ignore_errors=True)
    python = wandb_python()
    if python is None:
        notes.append("the wandb venv is missing (NBTRACK_TEST_WANDB_PYTHON): wandb's columns skipped")
    else:
        home = work / "wandb-home"
        home.mkdir()
        say("wandb: build")
        build = wandb_phase(python, "build", src, home, unused)
        say("wandb offline: log")
        columns["wandb offline"] = {"build": build, "log": wandb_phase(python, "log", src, home, unused)}
        server = start_server(work / "server-wandb")
        try:
            entity = "bench"
            key = create_key(server, entity)
            say("wandb online: log")
            log = wandb_phase(python, "log", src, home, unused, server, key)
            say("wandb online: download")
            out, ref = work / "wandb-out", f"{entity}/{PROJECT}/{NAME}:v0"
            download = wandb_phase(python, "download", src, home, out, server, key, ref)
            columns["wandb online"] = {"build": build, "log": log, "download": download}
            downloads["wandb online"] = out
        finally:
            server.stop()
            shutil.rmtree(work / "server-wandb", ignore_errors=True)
    for name, column in columns.items():
        for phase_name, phase in column.items():
            if phase.digest != digest:
                notes.append(f"FAILED: {name} {phase_name}: manifest digest {phase.digest}, not {digest}")
    for name, folder in downloads.items():  # outside every timer: the bytes are the source's
        got = tree_digest(folder)[0] if folder.is_dir() else "(no folder)"
        if got != digest:
            notes.append(f"FAILED: {name}'s download hashes to {got}, not the source's {digest}")
        shutil.rmtree(folder, ignore_errors=True)
    return columns, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=1000.0, help="the artifact's size (1000 MB)")
    parser.add_argument("--files", type=int, default=1000, help="its number of files (1,000)")
    parser.add_argument("--repeats", type=int, default=3, help="every phase this many times (median shown)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 files, 20 MB, once")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    for hidden in ("--src", "--root", "--out"):
        parser.add_argument(hidden, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child_nbtrack(args.child, args.src, args.root, args.out)
        print(RESULT_MARK + json.dumps(result | {"user_peak": own_peak()}), flush=True)
        return 0
    size = int((20.0 if args.quick else args.size_mb) * MB)
    count = 20 if args.quick else args.files
    repeats = 1 if args.quick else args.repeats
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    python = wandb_python()
    print(
        f"bench_artifacts {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
        f"{machine}, load average {load}; wandb from {python or '(none)'}\n",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-artifacts-") as tmp:
        work = Path(tmp)
        src = work / "files"
        started = time.perf_counter()
        make_files(src, size, count)
        print(
            f"{count:,} files, {size / MB:,.0f} MB written in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        runs, notes = [], []
        for repeat in range(repeats):
            say(f"repeat {repeat + 1} of {repeats}")
            (work / f"r{repeat}").mkdir()
            columns, found = measure(src, work / f"r{repeat}")
            shutil.rmtree(work / f"r{repeat}")
            runs.append(columns)
            notes += [note for note in found if note not in notes]
    print_table(medians(runs), size, count, repeats)
    peaks = [  # the highest of every repeat
        (f"{name} {phase_name} {what}", value / MB)
        for columns in runs
        for name, column in columns.items()
        if name.startswith("nbtrack")
        for phase_name, phase in column.items()
        for what, value in (("process", phase.user_peak), ("internal process", phase.internal_peak))
        if value is not None
    ]
    over = sorted({f"{label} {mb:.0f} MB" for label, mb in peaks if mb > RSS_BOUND_MB})
    print(
        f"\nevery nbtrack process under {RSS_BOUND_MB:.0f} MB: "
        + ("yes" if not over else "NO (" + "; ".join(over) + ")")
    )
    print(
        "every download identical to the source: " + ("NO" if any("download" in n for n in notes) else "yes")
    )
    for note in notes:
        print(note)
    return 1 if any(note.startswith("FAILED") for note in notes) else 0


if __name__ == "__main__":
    sys.exit(main())

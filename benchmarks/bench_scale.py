"""Load test: many concurrent runs speaking the wire protocol through a load balancer (nginx) to two
`nbtrack server` replicas on one PostgreSQL database, on this machine.

    python benchmarks/bench_scale.py [--runs 50,200,500] [--rows 3000] [--batch 250] [--kill 200]
                                     [--offered 50000] [--offered-runs 200] [--interval 15]
                                     [--offered-seconds 75] [--quick] [--db postgresql+psycopg://...]

Each simulated run does what a client does: `upsertBucket`, `CreateRunFiles` and the upload of a
small file, then file-stream posts of history rows, then the post that completes the run. Two
kinds of phase:
- saturation (one per --runs): each run posts --batch rows, the next post as soon as the last is
  answered. The most rows/s the deployment stores; with hundreds of runs in flight on two cores
  the latencies are mostly each post waiting behind the others (closed loop, no think time).
- offered load (--offered rows/s from --offered-runs runs): each run logs its share of the rows
  continuously and posts what it logged every --interval seconds (wandb-core's file-stream
  cadence, 15 s), the runs starting spread over one interval. Measured over the window in which
  every run logs (from one interval in to --offered-seconds): the rows/s of the posts answered in
  it and the latency of the posts sent in it, what a client sees at that load. A request that fails
(a refused connection, a 5xx) is retried after 0.2 s, as the clients do, and counted. After each
phase the database is asked how many history lines each run holds: rows lost (sent and
acknowledged, not stored) must be 0.

Reported per phase: aggregate rows/s (rows stored / wall time from the first request to the last
answer), file-stream latency p50/p99 (send to answer, retries included), requests retried, rows
lost, and CPU seconds per 100k rows of each component (both replicas, nginx, PostgreSQL, the
load generator: all on this machine's cores). `--kill N` adds a phase of N runs during which one
replica is killed (SIGKILL) 2 s in and restarted 10 s later (--quick: 0.5 s in, for 2 s).

Run files (the uploads) go to --files: an S3 bucket (NBTRACK_TEST_S3_URL, which .ci/run's
SeaweedFS sets) or a folder. The database: --db, else a fresh database made on
NBTRACK_TEST_POSTGRES_URL's server (dropped afterwards). The load generator is one asyncio
process with its own small HTTP/1.1 client (one keep-alive connection per run), so that the
generator costs as little CPU as it can.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nbtrack.online.server_run import CREATE_RUN_FILES, UPSERT_BUCKET
from tests.load_balancer import load_balancer, nginx_binary
from tests.pg_database import fresh_database
from tests.serving import ServerProcess, create_key, free_port, start_server

ENTITY = "team"  # the runs' entity: the benchmark's API key acts as it, as a team's clients would
RETRY_SECONDS = 0.2
GIVE_UP_SECONDS = 120.0  # a run's request that has not succeeded by then is counted failed
TARGETS = {"rows/s (200 runs)": 50_000, "p99 file_stream (ms)": 500, "rows lost": 0}
COMPLETE = b'{"complete": true, "exitcode": 0}'
# wandb-core's file stream posts at most once per 15 s unless x_file_stream_transmit_interval
# says otherwise (defaultTransmitInterval in core/internal/filestream/filestream.go; wandb 0.31's
# settings leave it unset): what a run logged meanwhile goes in one post.
WANDB_TRANSMIT_INTERVAL = 15.0


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection: requests in turn, reconnecting after a failure."""

    def __init__(self, host: str, port: int, authorization: str) -> None:
        self.host, self.port, self._authorization = host, port, authorization
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, target: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self._authorization}"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            self._writer.write(head.encode() + body)
            await self._writer.drain()
            status_line = await self._reader.readline()
            if not status_line:
                raise HttpError("connection closed")
            status = int(status_line.split()[1])
            length, chunked, close = 0, False, False
            while True:
                line = await self._reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value:
                    chunked = True
                elif name == "connection" and value == "close":
                    close = True
            if chunked:
                parts = []
                while True:
                    size = int((await self._reader.readline()).split(b";")[0], 16)
                    if size == 0:
                        await self._reader.readline()
                        break
                    parts.append(await self._reader.readexactly(size))
                    await self._reader.readline()
                answer = b"".join(parts)
            else:
                answer = await self._reader.readexactly(length)
            if close:
                self.close()
            return status, answer
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            self.close()
            raise HttpError(str(exc) or type(exc).__name__) from exc

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


@dataclass
class Tally:
    stream_latencies: list[float] = field(default_factory=list)
    retried: int = 0
    failed_runs: int = 0
    rows_acknowledged: int = 0
    first_request: float = float("inf")
    last_answer: float = 0.0
    # An offered-load phase: its posts (sent, answered, rows), and the window in which every run
    # was logging, over which its rows/s and latencies are taken.
    posts: list[tuple[float, float, int]] = field(default_factory=list)
    window: tuple[float, float] | None = None


async def call(conn: Connection, tally: Tally, method: str, target: str, body: bytes, kind: str) -> bytes:
    """The request, retried as a client does until it succeeds; its answer."""
    deadline = time.monotonic() + GIVE_UP_SECONDS
    started = time.perf_counter()
    tally.first_request = min(tally.first_request, started)
    content_type = "application/octet-stream" if method == "PUT" else "application/json"
    while True:
        try:
            status, answer = await conn.request(method, target, body, content_type)
            if status < 500:
                if status >= 400:
                    raise RuntimeError(f"{kind} refused ({status}): {answer[:300]!r}")
                break
        except HttpError:
            pass
        tally.retried += 1
        if time.monotonic() > deadline:
            raise RuntimeError(f"{kind} did not succeed within {GIVE_UP_SECONDS} s")
        await asyncio.sleep(RETRY_SECONDS)
    done = time.perf_counter()
    tally.last_answer = max(tally.last_answer, done)
    if kind == "file_stream":
        tally.stream_latencies.append(done - started)
    return answer


def graphql(query: str, variables: dict[str, object]) -> bytes:
    return json.dumps({"query": query, "variables": variables}).encode()


async def open_run(conn: Connection, project: str, run: str, tally: Tally) -> str:
    """What a client does before it streams: upsertBucket, CreateRunFiles and the upload of a small
    file; the run's file-stream path."""
    upsert = graphql(UPSERT_BUCKET, {"name": run, "project": project})
    await call(conn, tally, "POST", "/graphql", upsert, "upsert")
    files = graphql(CREATE_RUN_FILES, {"project": project, "run": run, "files": ["notes.txt"]})
    answer = await call(conn, tally, "POST", "/graphql", files, "CreateRunFiles")
    upload = urlsplit(json.loads(answer)["data"]["createRunFiles"]["files"][0]["uploadUrl"])
    await call(conn, tally, "PUT", f"{upload.path}?{upload.query}", os.urandom(10_000), "upload")
    return f"/files/{ENTITY}/{project}/{run}/file_stream"


def history_post(first: int, stop: int, rows: int) -> bytes:
    """A file-stream post of history rows first..stop-1 (of a run of `rows` rows)."""
    lines = [
        f'{{"_step": {s}, "_runtime": {s * 0.01!r}, "loss": {1 / (s + 1)!r}, "acc": {s / rows!r}, '
        '"lr": 0.0003}'
        for s in range(first, stop)
    ]
    return json.dumps({"files": {"wandb-history.jsonl": {"offset": first, "content": lines}}}).encode()


def connect(url: str, key: str) -> Connection:
    parts = urlsplit(url)
    authorization = "Authorization: Basic " + base64.b64encode(f"api:{key}".encode()).decode() + "\r\n"
    return Connection(parts.hostname or "127.0.0.1", parts.port or 80, authorization)


async def one_run(url: str, key: str, project: str, run: str, rows: int, batch: int, tally: Tally) -> None:
    """Saturation: each post as soon as the last is answered."""
    conn = connect(url, key)
    try:
        stream = await open_run(conn, project, run, tally)
        for offset in range(0, rows, batch):
            stop = min(offset + batch, rows)
            await call(conn, tally, "POST", stream, history_post(offset, stop, rows), "file_stream")
            tally.rows_acknowledged += stop - offset
        await call(conn, tally, "POST", stream, COMPLETE, "file_stream")
    except RuntimeError as exc:
        tally.failed_runs += 1
        print(f"  run {run}: {exc}", file=sys.stderr)
    finally:
        conn.close()


@dataclass(frozen=True)
class Cadence:
    """An offered load: each run logs rows_per_second for seconds, and posts what it logged every
    interval seconds (its first post at `phase` seconds into the interval, so that the runs' posts
    spread over it as independent clients' do). A post answered late is followed at once by the
    next, as wandb-core's rate limiter (one token per interval, a burst of one) allows."""

    rows_per_second: float
    interval: float
    seconds: float  # how long each run logs (its start is its own: see paced_load)

    @property
    def rows(self) -> int:
        return int(self.rows_per_second * self.seconds)


async def paced_run(conn: Connection, stream: str, cadence: Cadence, start: float, tally: Tally) -> None:
    """A run logging from start (event-loop time) on for cadence.seconds, posting every interval."""
    loop = asyncio.get_running_loop()
    sent, tick, end = 0, start + cadence.interval, start + cadence.seconds
    try:
        while sent < cadence.rows:
            await asyncio.sleep(max(0.0, min(tick, end) - loop.time()))
            due = min(cadence.rows, int(cadence.rows_per_second * (loop.time() - start)))
            if due > sent:
                body = history_post(sent, due, cadence.rows)
                began = time.perf_counter()
                await call(conn, tally, "POST", stream, body, "paced post")
                tally.posts.append((began, time.perf_counter(), due - sent))
                tally.rows_acknowledged += due - sent
                sent = due
            tick = max(tick + cadence.interval, loop.time())
        await call(conn, tally, "POST", stream, COMPLETE, "file_stream")
    except RuntimeError as exc:
        tally.failed_runs += 1
        print(f"  {stream}: {exc}", file=sys.stderr)
    finally:
        conn.close()


async def paced_load(url: str, key: str, project: str, runs: int, cadence: Cadence) -> Tally:
    """Offered load: every run opened first; then run i starts logging i/runs of an interval after
    the first, as independent clients would, so that from one interval in until the first run ends
    all of them log: runs * rows_per_second offered. That window is what the phase measures."""
    if cadence.seconds < 2 * cadence.interval:
        raise ValueError("the offered-load phase needs --offered-seconds of at least two intervals")
    setup, tally = Tally(), Tally()
    conns = [connect(url, key) for _ in range(runs)]
    streams = await asyncio.gather(*(open_run(c, project, f"r{i}", setup) for i, c in enumerate(conns)))
    start, now = asyncio.get_running_loop().time() + 0.1, time.perf_counter() + 0.1
    tally.window = (now + cadence.interval, now + cadence.seconds)
    await asyncio.gather(
        *(
            paced_run(conn, stream, cadence, start + cadence.interval * i / runs, tally)
            for i, (conn, stream) in enumerate(zip(conns, streams, strict=True))
        )
    )
    return tally


async def load(url: str, key: str, project: str, runs: int, rows: int, batch: int) -> Tally:
    tally = Tally()
    await asyncio.gather(*(one_run(url, key, project, f"r{i}", rows, batch, tally) for i in range(runs)))
    return tally


def stored_lines(db_url: str, project: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text(
                    "SELECT runs.run_id, runs.history_line_count FROM runs JOIN projects "
                    "ON runs.project_id = projects.id JOIN entities ON projects.entity_id = entities.id "
                    "WHERE projects.name = :p AND entities.name = :e"
                ),
                {"p": project, "e": ENTITY},
            ).all()
        return {run_id: count for run_id, count in found}
    finally:
        engine.dispose()


class CpuMeter:
    """CPU seconds (user + system) each component's processes spent between start and spent(): a
    process that appeared meanwhile (a new database connection) counts from its start, one that
    ended meanwhile (a killed replica) with what it had spent at the start only."""

    def __init__(self, components: Callable[[], dict[str, list[psutil.Process]]]) -> None:
        self._components = components
        self._before = self._read()

    def _read(self) -> dict[str, dict[int, float]]:
        spent: dict[str, dict[int, float]] = {}
        for name, processes in self._components().items():
            spent[name] = {}
            for process in processes:
                try:
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                spent[name][process.pid] = times.user + times.system
        return spent

    def spent(self) -> dict[str, float]:
        after = self._read()
        return {
            name: sum(max(0.0, cpu - self._before.get(name, {}).get(pid, 0.0)) for pid, cpu in pids.items())
            for name, pids in after.items()
        }


def postgres_processes() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres")]


def with_children(process: psutil.Process) -> list[psutil.Process]:
    return [process, *process.children(recursive=True)]


@dataclass
class Phase:
    name: str
    runs: int
    rows_per_run: int
    tally: Tally
    stored: int
    lost: int
    cpu: dict[str, float]
    offered: float | None = None  # the rows/s offered (an offered-load phase)

    @property
    def seconds(self) -> float:
        return max(1e-9, self.tally.last_answer - self.tally.first_request)

    @property
    def rows_per_second(self) -> float:
        """Rows stored / the phase's time; an offered-load phase: rows answered within its window."""
        if self.tally.window is None:
            return self.stored / self.seconds
        first, last = self.tally.window
        return sum(rows for _, done, rows in self.tally.posts if first <= done <= last) / (last - first)

    def latency_ms(self, quantile: float) -> float:
        """A file-stream post's latency; an offered-load phase: of the posts sent within its window."""
        values = sorted(self.tally.stream_latencies)
        if self.tally.window is not None:
            first, last = self.tally.window
            values = sorted(done - sent for sent, done, _ in self.tally.posts if first <= sent <= last)
        if not values:
            return float("nan")
        return 1000 * values[min(len(values) - 1, int(quantile * len(values)))]


def run_phase(
    name: str,
    url: str,
    key: str,
    db_url: str,
    runs: int,
    rows: int,
    batch: int,
    meter: CpuMeter,
    kill: ServerProcess | None,
    kill_after: float = 2.0,
    kill_for: float = 10.0,
    cadence: Cadence | None = None,
) -> Phase:
    """A phase: saturation (each post as soon as the last is answered), or with cadence given the
    offered load it describes (rows then cadence.rows a run)."""
    project = f"scale-{uuid.uuid4().hex[:6]}"
    if cadence is not None:
        rows = cadence.rows

    async def main() -> Tally:
        if cadence is not None:
            task = asyncio.create_task(paced_load(url, key, project, runs, cadence))
        else:
            task = asyncio.create_task(load(url, key, project, runs, rows, batch))
        if kill is not None:
            await asyncio.sleep(kill_after)
            if task.done():
                print(f"  {name}: the load ended before the kill; use more --rows", file=sys.stderr)
            kill.kill()
            await asyncio.sleep(kill_for)
            await asyncio.to_thread(kill.start)
        return await task

    tally = asyncio.run(main())
    cpu = meter.spent()
    stored_counts = stored_lines(db_url, project)
    expected = {f"r{i}": rows for i in range(runs)}
    lost = sum(max(0, rows - stored_counts.get(run, 0)) for run in expected) if not tally.failed_runs else -1
    offered = None if cadence is None else cadence.rows_per_second * runs
    return Phase(name, runs, rows, tally, sum(stored_counts.values()), lost, cpu, offered)


def print_table(phases: list[Phase]) -> None:
    components = list(phases[0].cpu)
    header = f"{'phase':<24} {'runs':>5} {'rows/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'retried':>8} {'lost':>5}"
    header += "".join(f" {name + ' cpu':>15}" for name in components)
    print(header)
    print("-" * len(header))
    for phase in phases:
        line = (
            f"{phase.name:<24} {phase.runs:>5} {phase.rows_per_second:>9,.0f} {phase.latency_ms(0.5):>8.1f}"
            f" {phase.latency_ms(0.99):>8.1f} {phase.tally.retried:>8} {phase.lost:>5}"
        )
        hundred_k = max(phase.stored, 1) / 100_000
        line += "".join(f" {phase.cpu[name] / hundred_k:>13.2f} s" for name in components)
        print(line)
    print("(cpu: CPU seconds per 100k rows stored; lost -1: a run gave up, see above)")
    print(
        "saturation: each run posts its next batch as soon as the last is answered: the most rows/s "
        "the deployment stores; its latencies are mostly waiting behind the other runs' posts.\n"
        "offered: each run posts every interval what it logged meanwhile (wandb-core's cadence), the "
        "runs together offering the rows/s named; rows/s and latencies over the window in which every "
        "run logs (rows/s: rows of the posts answered in it): what a client sees at that load."
    )
    saturated = {p.runs: p for p in phases if p.name.startswith("saturation")}
    offered = [p for p in phases if p.name.startswith("offered")]
    print()
    # The targets (50k rows/s from 200 runs, p99 <= 500 ms) are one load: the offered phase. A
    # closed loop has no latency target to meet (by Little's law its latency is runs / rows/s), so
    # its rows/s is shown beside 50k as headroom, not as the target.
    print("target                                                 measured      ratio")
    for p in offered:
        assert p.offered is not None
        ratio, p99 = p.rows_per_second / p.offered, p.latency_ms(0.99)
        stored, latency = (
            f"rows/s stored of the {p.offered:,.0f} offered",
            f"p99 file_stream <= 500 ms at {p.name}",
        )
        print(f"{stored:<54} {p.rows_per_second:>9,.0f}   {ratio:.2f}x")
        print(f"{latency:<54} {p99:>9.1f}   {500 / p99:.2f}x")
    for p in phases:
        print(f"rows lost ({p.name}): {p.lost}")
    if 200 in saturated:
        p = saturated[200]
        headroom = p.rows_per_second / 50_000
        print(f"saturation, 200 runs (closed loop): {p.rows_per_second:,.0f} rows/s, {headroom:.2f}x 50,000")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", default="50,200,500", help="concurrent runs per phase, comma-separated")
    parser.add_argument("--rows", type=int, default=3000, help="history rows per run")
    parser.add_argument("--batch", type=int, default=250, help="rows per file-stream post")
    parser.add_argument("--kill", type=int, default=200, help="runs of the replica-kill phase (0: none)")
    parser.add_argument(
        "--db", help="PostgreSQL URL (default: a fresh database on NBTRACK_TEST_POSTGRES_URL)"
    )
    parser.add_argument(
        "--files",
        help="where the replicas keep run files: s3://BUCKET/PREFIX (credentials and endpoint from "
        "the AWS_* variables) or a folder (default: NBTRACK_TEST_S3_URL if set, else a temporary folder)",
    )
    parser.add_argument(
        "--offered",
        type=int,
        default=50_000,
        help="rows/s the runs of the offered-load phase log together (0: no such phase)",
    )
    parser.add_argument("--offered-runs", type=int, default=200, help="runs of the offered-load phase")
    parser.add_argument(
        "--interval",
        type=float,
        default=WANDB_TRANSMIT_INTERVAL,
        help="seconds between a run's posts in the offered-load phase (default: wandb-core's)",
    )
    parser.add_argument(
        "--offered-seconds",
        type=float,
        default=75.0,
        help="how long each run of the offered-load phase logs (measured: all but the first interval)",
    )
    parser.add_argument("--quick", action="store_true", help="a small run of every phase (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.rows, args.batch, args.kill = "10", 1000, 50, 10
        args.offered, args.offered_runs, args.interval, args.offered_seconds = 2000, 10, 0.5, 2.5
    counts = [int(n) for n in args.runs.split(",") if n.strip()]
    base = args.db or os.environ.get("NBTRACK_TEST_POSTGRES_URL")
    if not base:
        print("bench_scale: needs PostgreSQL: pass --db or set NBTRACK_TEST_POSTGRES_URL", file=sys.stderr)
        return 2
    if nginx_binary() is None:
        print("bench_scale: needs nginx (`apt-get install nginx-light`)", file=sys.stderr)
        return 2
    # The generator opens a connection per run: room for 500 runs and the replicas' own files.
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        db_url = args.db or stack.enter_context(fresh_database(base, "nbtrack_scale"))
        files = args.files or os.environ.get("NBTRACK_TEST_S3_URL") or str(Path(tmp) / "files")
        if files.startswith("s3://"):
            files = f"{files.rstrip('/')}/bench-{uuid.uuid4().hex[:8]}"  # a prefix of its own
        common = ["--files", files, "--rate-limit", "0", "--crashed-after", "0", "--log-level", "error"]
        replicas = [start_server(Path(tmp) / name, db_url=db_url, extra_args=common) for name in ("a", "b")]
        for replica in replicas:
            stack.callback(replica.stop)
        key = create_key(db_url, ENTITY)
        upstreams = [r.url.removeprefix("http://") for r in replicas]
        balancer = stack.enter_context(load_balancer(Path(tmp) / "nginx", free_port(), upstreams))
        print(
            f"bench_scale: {args.rows} rows per run in posts of {args.batch}, through nginx to 2 replicas on "
            f"PostgreSQL, run files in {'S3' if files.startswith('s3://') else 'a folder'} ({files}); "
            f"{psutil.cpu_count()} cores"
        )

        def components() -> dict[str, list[psutil.Process]]:
            found = {}
            for name, replica in zip(("replica a", "replica b"), replicas, strict=True):
                assert replica.process is not None
                found[name] = with_children(psutil.Process(replica.process.pid))
            found["nginx"] = with_children(psutil.Process(balancer.process.pid))
            found["postgres"] = postgres_processes()
            found["generator"] = [psutil.Process()]
            return found

        # Warm-up, not measured: each replica's first requests import and build what it serves with.
        asyncio.run(load(balancer.url, key, "warm-up", 8, 200, 100))
        phases = []
        for runs in counts:
            phases.append(
                run_phase(
                    "saturation",
                    balancer.url,
                    key,
                    db_url,
                    runs,
                    args.rows,
                    args.batch,
                    CpuMeter(components),
                    None,
                )
            )
        if args.offered:
            cadence = Cadence(args.offered / args.offered_runs, args.interval, args.offered_seconds)
            phases.append(
                run_phase(
                    f"offered {args.offered // 1000}k rows/s",
                    balancer.url,
                    key,
                    db_url,
                    args.offered_runs,
                    cadence.rows,
                    args.batch,
                    CpuMeter(components),
                    None,
                    cadence=cadence,
                )
            )
        if args.kill:
            phases.append(
                run_phase(
                    "replica killed",
                    balancer.url,
                    key,
                    db_url,
                    args.kill,
                    args.rows,
                    args.batch,
                    CpuMeter(components),
                    replicas[0],
                    kill_after=0.5 if args.quick else 2.0,
                    kill_for=2.0 if args.quick else 10.0,
                )
            )
        print_table(phases)
        for name, replica in zip("ab", replicas, strict=True):
            # What the retries met, when a replica failed requests (the killed replica's restart aside).
            failures = [line for line in replica.log().splitlines() if "ERROR" in line or "Error:" in line]
            if failures:
                print(f"replica {name}: {len(failures)} errors logged, the first: {failures[0][:300]}")
        upstream = [line for line in balancer.error_log().splitlines() if "upstream" in line]
        if upstream:
            print(f"nginx: {len(upstream)} upstream errors logged, the first: {upstream[0][:300]}")
        return 0 if all(p.lost == 0 for p in phases) else 1


if __name__ == "__main__":
    sys.exit(main())

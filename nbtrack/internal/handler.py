"""The handler: the one thread that orders everything a run does.

It reads record_pipe, makes rows of log() calls (`Rows`, rows.py: steps, commit=False merged, a
step going backwards refused), keeps the summary, answers requests, pushes live updates, and
forwards persisted records to the writer.

In a notebook the extension sends a CellRecord when a cell begins; the rows and console lines
that follow carry that cell (`_cell`, its execution count), and a re-run cell that logs steps
below the current one starts a new attempt of the run (provenance.py).

Everything the user side sends is numbered (control.seq; each log() call its own). After each
message the handler tells the writer how far the user side may forget (`_acknowledge`): up to
that message, or to just before the oldest call of a row still pending (not in the log yet).
A handler started to recover a run whose process died (`SetupRequest.recover`) rebuilds its
state from the log (`_recover`), and then skips what the user side re-sends that the log already
holds.

The handler talks to the writer only through records (`WriterThread.put`, `mark`, `open`: the
setup travels to the sender through the writer as its first record) and reads the progress the
writer and the sender publish (progress.py) to answer poll_exit and to push live updates.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from nbtrack import jsonutil
from nbtrack.internal.progress import DeliveryProgress, LogProgress, StepRanges
from nbtrack.internal.provenance import Provenance
from nbtrack.internal.rows import Rows
from nbtrack.internal.run_artifact_list import RunArtifactList
from nbtrack.internal.sampler import LIVE_POINTS, LIVE_SERIES
from nbtrack.internal.summary import SummaryKeeper
from nbtrack.internal.system_metrics import StatsThread, SystemSampler
from nbtrack.internal.writer import WriterThread
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.txlog import iter_records
from nbtrack.vocabulary import CELLS_KEY
from nbtrack.worker import OnFatal

__all__ = ["Handler"]

logger = logging.getLogger("nbtrack")

SUMMARY_SECONDS = 1.0  # a changing summary reaches the log and the store this often


class Handler:
    """Handles one run's records in order; `reply` writes a Result to result_pipe."""

    def __init__(
        self,
        writer: WriterThread,
        log: LogProgress,
        delivery: DeliveryProgress,
        reply: Callable[[pb.Result], None],
        on_fatal: OnFatal,
    ) -> None:
        self._writer = writer
        self._on_fatal = on_fatal  # for the threads the handler starts (system metrics)
        self._log = log
        self._delivery = delivery
        self._reply = reply
        self.shutdown: pb.Record | None = None  # the shutdown request, answered once the process stopped
        self.run: pb.RunRecord | None = None
        self.state = "starting"
        self.summary = SummaryKeeper()
        self.provenance = Provenance()
        self.rows = Rows(self.summary, self.provenance, self._notice)
        self._live_interval = 0.0
        self._live_sent = 0.0
        # (state, rows logged, rows stored, artifacts noted, artifacts stored) last pushed
        self._live_seen: tuple[str, int, int, int, int] | None = None
        self._summary_dirty = False
        self._summary_sent = 0.0
        self.exited = False
        self._acknowledged = 0
        # Recovering: the records with these seqs are in the log (and log() calls up to
        # rows.logged_through).
        self._logged_records: set[int] = set()
        self._stats: StatsThread | None = None
        self._stats_interval = 0.0
        # The run's artifacts: what the panel lists, and every record in log order (finish() names
        # those past the sender's count as not delivered).
        self.artifacts = RunArtifactList()

    @property
    def lines(self) -> StepRanges:
        """Every row of this log: its line and step."""
        return self.rows.lines

    # -- dispatch ----------------------------------------------------------------------------

    def handle(self, record: pb.Record) -> None:
        seq = record.control.seq if record.HasField("control") else 0
        # Recovering: a re-sent message the log already holds is skipped (a batch of calls that
        # straddles what the log holds is cut in Rows.add_calls).
        if not (seq and (seq <= self.rows.logged_through or seq in self._logged_records)):
            self._dispatch(record)
        if seq:
            self._acknowledge(seq)

    def _acknowledge(self, seq: int) -> None:
        safe = self.rows.acknowledgeable(seq)
        if safe > self._acknowledged:
            self._acknowledged = safe
            self._writer.mark(safe)

    def _dispatch(self, record: pb.Record) -> None:
        kind = record.WhichOneof("record_type")
        if kind == "request":
            self._on_request(record)
        elif kind == "run":
            self._on_run(record)
        elif kind == "exit":
            self.finish(record)
        elif kind == "summary":
            self.summary.apply(record)
            self._send_summary(force=True)
        elif kind == "metric":
            self.summary.apply(record)
            self._writer.put([record])
        elif kind == "cell":
            self._on_cell(record)
        elif kind == "console":
            for line in record.console.lines:
                line.cell = self.provenance.cell
            self._writer.put([record])
        elif kind in ("artifact", "use_artifact"):
            self.artifacts.note(record)
            self._writer.put([record])
        else:
            self._writer.put([record])

    def _on_cell(self, record: pb.Record) -> None:
        """A cell began (a commit=False row still pending is the new cell's once it commits),
        or ended while system metrics pause between cells."""
        if self._stats is not None:
            (self._stats.pause if record.cell.ended else self._stats.resume)()
        if record.cell.ended:
            return
        self._writer.put([record])
        self.provenance.begin(record.cell)
        self.summary.values[CELLS_KEY] = self.provenance.cells_summary()
        self._summary_dirty = True

    def _on_request(self, record: pb.Record) -> None:
        request = record.request
        kind = request.WhichOneof("request_type")
        if kind == "log_calls":
            self._on_log_calls(request.log_calls)
            return
        if kind == "setup":
            setup = request.setup
            self._live_interval = setup.live_interval
            self._stats_interval = setup.stats_interval
            records = 0
            if setup.log_path and setup.recover:
                records = self._recover(Path(setup.log_path))
            # The writer hands the setup to the sender first, then (recovering) the log it reopened.
            self._writer.open(setup, records=records, lines=self.rows.logged)
            return
        if kind == "shutdown":
            # The panel's last update comes before the answer (results arrive in order), so it
            # holds what was stored while finishing, e.g. the version a logged artifact became.
            self.tick(force=True)
            self.shutdown = record  # main.py answers it once the stages have stopped
            return
        response = pb.Response()
        if kind == "run_start":
            self.state = "running"
            response.run_start.SetInParent()
        elif kind == "poll_exit":
            poll = response.poll_exit
            delivery = self._delivery
            poll.rows_pending = self.rows.logged - delivery.rows_stored
            poll.rows_unlogged = self.rows.logged - self._log.lines_logged
            # The same bytes may be both unsynced and undelivered: show the larger backlog.
            poll.bytes_pending = max(delivery.bytes_pending, self._log.bytes_unsynced)
            poll.retrying = delivery.retrying
            if delivery.backend is not None:  # offline: nothing is delivered
                poll.artifacts_pending = len(self.artifacts.in_log) - delivery.artifacts_done
            exit_result = delivery.exit_result
            poll.done = exit_result is not None
            if exit_result is not None:
                poll.exit_result.CopyFrom(exit_result)
        elif kind == "get_summary":
            response.get_summary.summary_json = jsonutil.dumps(self.summary.values)
        elif kind == "sampled_history":
            wanted = set(request.sampled_history.keys)
            for key, series in self.rows.sampled.series.items():
                if not wanted or key in wanted:
                    steps, values = series.points()
                    response.sampled_history.series.add(key=key, steps=steps, values=values)
        elif kind == "status":
            status = response.status
            status.state, status.rows_logged = self.shown_state, self.rows.logged
            status.step = self.rows.shown_step()
            status.rows_stored = self._delivery.rows_stored
            status.runtime = time.time() - self.rows.start_time if self.run is not None else 0.0
        elif kind == "artifact_version":
            key = request.artifact_version.key
            answer = response.artifact_version
            answer.version = self._delivery.artifact_versions.get(key, "")
            answer.failed = self._delivery.artifact_failures.get(key, "")
        if record.control.req_resp:
            self._reply(pb.Result(control=record.control, response=response))

    def _recover(self, path: Path) -> int:
        """Rebuild the run's state from its log after its process died (the writer then hands the
        sender the log to deliver again, idempotently). Returns the number of records read."""
        count = 0
        for record in iter_records(path):
            count += 1
            kind = record.WhichOneof("record_type")
            seq = record.control.seq if record.HasField("control") else 0
            if seq:
                self._logged_records.add(seq)
            if kind == "run":
                self._on_run(record, persist=False)
                self.state = "running"
            elif kind == "history":
                self.rows.recover(record)
            elif kind in ("summary", "metric"):
                self.summary.apply(record)  # the summary as it was then; rows after it update it
            elif kind == "cell":
                self.provenance.begin(record.cell)
            elif kind in ("artifact", "use_artifact"):
                self.artifacts.note(record)
            elif kind == "exit":
                self.exited = True
                self.state = "finishing"
        self._summary_dirty = True
        self._acknowledged = self.rows.logged_through
        if self.run is not None:
            self._start_stats()  # only now: a log that holds its exit record gets no more samples
        return count

    def _on_run(self, record: pb.Record, persist: bool = True) -> None:
        self.run = record.run
        self.rows.start(record.run)
        self.summary.apply(record)  # a resumed run's summary
        if not record.run.host:
            record.run.host = socket.gethostname()
        if persist:  # live (a recovered run starts its samples once its whole log is read)
            self._writer.put([record])
            self._start_stats()

    def _start_stats(self) -> None:
        """System metrics go straight to the writer: they touch none of the handler's state."""
        if self._stats_interval > 0 and self._stats is None and not self.exited:
            try:
                sampler = SystemSampler(os.getppid())
            except Exception:
                logger.exception("nbtrack: system metrics are not available here")
                return
            cell = self.provenance
            self._stats = StatsThread(
                sampler, self._stats_interval, self._writer.put, self._on_fatal, cell=lambda: cell.cell
            )

    # -- rows and live updates ---------------------------------------------------------------

    def _on_log_calls(self, batch: pb.LogCallsRequest) -> None:
        out = self.rows.add_calls(batch)
        if out:
            self._writer.put(out)
            self._summary_dirty = True
        self._send_summary()

    def tick(self, force: bool = False) -> None:
        """Called between records and when idle: push a LiveResult if one is due and something changed."""
        if not self._live_interval or self.run is None:
            return
        now = time.monotonic()
        if now - self._live_sent < self._live_interval and not force:
            return
        versions = self._delivery.artifact_versions
        seen = (
            self.shown_state,
            self.rows.logged,
            self._delivery.rows_stored,
            self.artifacts.count,
            self.artifacts.stored(versions),
        )
        if seen == self._live_seen:
            return
        self._live_sent, self._live_seen = now, seen
        self._reply(pb.Result(live=self.live_result()))

    @property
    def shown_state(self) -> str:
        """The state a person sees: "retrying" while a live run cannot reach its server."""
        if self.state in ("running", "finishing") and self._delivery.retrying:
            return "retrying"
        return self.state

    def live_result(self) -> pb.LiveResult:
        rows = self.rows
        live = pb.LiveResult(
            state=self.shown_state,
            step=rows.shown_step(),
            runtime=max(0.0, time.time() - rows.start_time),
            latest_json=jsonutil.dumps(rows.latest),
            rows_logged=rows.logged,
            rows_pending=rows.logged - self._delivery.rows_stored,
            bytes_pending=self._delivery.bytes_pending,
        )
        self.provenance.add_spans(live)
        if self._stats is not None and self._stats.latest is not None:
            live.system_json = jsonutil.dumps(self._stats.latest)
        for key, series in list(rows.sampled.series.items())[:LIVE_SERIES]:
            steps, values = series.points(LIVE_POINTS)  # min/max buckets: spikes stay
            live.series.add(key=key, steps=steps, values=values)
        self.artifacts.add_to(live, self._delivery.artifact_versions)
        return live

    def _send_summary(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or (self._summary_dirty and now - self._summary_sent >= SUMMARY_SECONDS):
            self._summary_sent = now
            self._summary_dirty = False
            summary = pb.SummaryRecord(update_json=jsonutil.dumps(self.summary.values), full=True)
            self._writer.put([pb.Record(summary=summary)])

    # -- exit --------------------------------------------------------------------------------

    def finish(self, record: pb.Record) -> None:
        """Complete the pending row and the summary, then let the exit record drain the pipeline."""
        if self.exited:
            return
        self.exited = True
        self.state = "finishing"
        if self._stats is not None:
            self._stats.stop()  # no sample after the exit record
        out: list[pb.Record] = []
        self.rows.commit(out)
        if out:
            self._writer.put(out)
        self._send_summary(force=True)
        self.tick(force=True)  # a live panel sees every row before the run ends
        if self.run is not None and not record.exit.runtime:
            record.exit.runtime = max(0.0, time.time() - self.rows.start_time)
        self._writer.put([record])

    def _notice(self, message: str) -> None:
        logger.debug("nbtrack notice: %s", message)
        self._reply(pb.Result(notice=pb.NoticeResult(level=pb.NoticeResult.WARNING, message=message)))

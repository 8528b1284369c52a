"""The sender: all I/O towards the store or a server, in batches, after the writer logged it.

`Sender` is a plain state machine over records, so the same code delivers a live run (wrapped in
`SenderThread`, fed by the writer through the `Feed`) and replays a transaction log (`nbtrack
sync`). History and console lines are addressed by their line number in the run, so delivering
the same lines again (a retry, a replay) replaces rather than duplicates.

Each backend call goes through a `Retrier` (retrier.py): one that fails for a reason that may
pass (a locked or full database, a lost connection, a full disk) is retried with backoff until it
works or the run is aborted (`abort()`, a shutdown after finish() gave up waiting), meanwhile
`retrying` is true; any other failure is reported once and that call is dropped. The rows a
dropped call carried are counted here, so the exit result says exactly which rows the store
lacks and whether the transaction log has them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbtrack import jsonutil
from nbtrack.console_format import console_line
from nbtrack.errors import NbtrackError, StoreError
from nbtrack.internal.backend import Backend, open_backend
from nbtrack.internal.feed import LINE_OVERHEAD, MEMORY_BYTES, Feed, HistoryLines, Item, in_memory
from nbtrack.internal.progress import DeliveryProgress, LogProgress
from nbtrack.internal.retrier import RETRY, Retrier, is_transient
from nbtrack.internal.run_artifact_list import logged_key
from nbtrack.internal.trouble import Trouble, short_reason
from nbtrack.internal.whereabouts import Whereabouts
from nbtrack.online.retry import RetryPolicy
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.settings import RUN_FILES
from nbtrack.vocabulary import exit_state
from nbtrack.worker import OnFatal, Worker

__all__ = ["BackendOpener", "Sender", "SenderThread"]

logger = logging.getLogger("nbtrack")

BATCH_ROWS = 5000  # lines per store write: large enough to amortise a transaction
# ... and no more than the Feed lets wait in memory: rows of megabytes each make small batches.
BATCH_BYTES = MEMORY_BYTES
BATCH_SECONDS = 0.05  # and a live run's rows are at most this late


# How the sender gets its backend: open_backend, or `nbtrack sync`'s guarded wrapper of it.
BackendOpener = Callable[[pb.SetupRequest, pb.RunRecord, Callable[[str], None]], Backend | None]


class Sender:
    """Turns records into backend calls; `reply` carries answers back to the user process.

    log: the writer's progress (None when replaying a log: it has everything); it decides whether
    rows the store lacks are in the log or lost. trouble: the process's one place for notices
    about failing and recovering (made from `notice` if not given).
    """

    def __init__(
        self,
        reply: Callable[[pb.Result], None],
        notice: Callable[[str], None],
        setup: pb.SetupRequest | None = None,
        backend_opener: BackendOpener = open_backend,
        *,
        log: LogProgress | None = None,
        trouble: Trouble | None = None,
        policy: RetryPolicy = RETRY,
        keep_alive: bool = False,
    ) -> None:
        self._places = Whereabouts(setup, log)  # the setup: given, or a live run's first record
        self._open_backend = backend_opener  # `nbtrack sync` guards what a replay may change
        self._reply = reply
        self._notice = notice
        self._aborted = threading.Event()
        self.backend: Backend | None = None
        self.progress = DeliveryProgress()
        trouble = trouble if trouble is not None else Trouble(notice)
        self._retrier = Retrier(self.progress, trouble, notice, self._aborted, policy, self._places)
        self._history: list[str] = []
        self._steps: list[int] = []
        self._history_held = 0  # what the lines in _history take in memory (feed.in_memory)
        self._history_offset = 0  # line number of _history[0]
        self._first_line = 0  # the line number of this log's first row (a resumed run's offset)
        self._stored_through = 0  # recovering: lines below this are stored already
        self._output: list[str] = []
        self._output_offset = 0
        self._events: list[str] = []  # system metrics, one JSON object a line
        self._events_offset = 0
        self._runtime_origin = 0.0  # the run's start, minus a resumed run's earlier runtime
        self._summary: dict[str, Any] | None = None
        self._metrics: dict[str, dict[str, str]] = {}
        self._last_flush = time.monotonic()
        self._keep_alive = keep_alive  # a live run (not a replay): heartbeats while idle

    @property
    def setup(self) -> pb.SetupRequest | None:
        """Where the run goes: given, or the first record of a live run says."""
        return self._places.setup

    @property
    def exit_result(self) -> pb.ExitResult | None:
        return self.progress.exit_result

    @property
    def rows_stored(self) -> int:
        """History rows the store or server has acknowledged."""
        return self.progress.rows_stored

    @property
    def retrying(self) -> bool:
        return self.progress.retrying

    def abort(self) -> None:
        """Stop delivering now (the user stopped waiting): a retry in progress gives up at once,
        and nothing more is tried; what is not delivered stays where it is (the log)."""
        self._aborted.set()
        if self.backend is not None:
            self.backend.abort()

    @property
    def aborted(self) -> bool:
        return self._aborted.is_set()

    def handle(self, records: list[pb.Record]) -> None:
        for record in records:
            kind = record.WhichOneof("record_type")
            if kind == "history":
                if self._history_offset < self._stored_through and not self._history:
                    self._history_offset += 1  # a recovered line the store or server has
                    self.progress.rows_skipped += 1
                    self.progress.lines_handed += 1
                    continue
                self._history.append(record.history.data_json.decode())
                self._steps.append(record.history.step)
                self._history_held += in_memory(len(record.history.data_json), 1, LINE_OVERHEAD)
            elif kind == "summary":
                self._on_summary(record.summary)
            elif kind == "console":
                self._output.extend(console_line(line) for line in record.console.lines)
            elif kind == "stats":
                self._events.append(self._event_line(record.stats))
            elif kind == "run":
                self._on_run(record)
            elif kind == "config":
                self._flush()
                update = jsonutil.loads(record.config.update_json) if record.config.update_json else {}
                if self.backend is not None:
                    self._retrier.deliver(self.backend.update_config, update, list(record.config.remove))
            elif kind == "metric":
                metric = record.metric
                self._metrics[metric.name] = {
                    "name": metric.name,
                    "summary": metric.summary,
                    "step_metric": metric.step_metric,
                }
                if self.backend is not None:
                    self._retrier.deliver(self.backend.set_metrics, list(self._metrics.values()))
            elif kind == "files":
                self._on_files(record.files)
            elif kind == "alert":
                if self.backend is not None:
                    self._retrier.deliver(self.backend.add_alert, record.alert)
            elif kind == "artifact":
                run_dir = self._run_dir()
                if self.backend is not None and run_dir is not None:
                    staged = run_dir / record.artifact.staged
                    delivered = self._retrier.deliver(
                        self._log_artifact, self.backend, record.artifact, staged
                    )
                    if not delivered:
                        self._artifact_not_stored(record.artifact)
                    self._artifact_done(delivered)
            elif kind == "use_artifact":
                if self.backend is not None:
                    self._artifact_done(self._retrier.deliver(self.backend.use_artifact, record.use_artifact))
            elif kind == "exit":
                self._on_exit(record)
            elif kind == "request" and record.request.HasField("setup"):
                self._places.setup = record.request.setup  # a live run's first record: where it goes
        if self._batch_due():
            self._flush()

    def add_history(self, lines: list[bytes], steps: list[int]) -> None:
        """History rows (JSON lines and steps) in log order: what handle() does with history
        records, for rows the writer hands over in that compact form."""
        skip = 0
        if not self._history and self._history_offset < self._stored_through:
            skip = min(len(lines), self._stored_through - self._history_offset)  # the store has them
            self._history_offset += skip
            self.progress.rows_skipped += skip
            self.progress.lines_handed += skip
        self._history.extend(map(bytes.decode, lines[skip:]))
        self._steps.extend(steps[skip:])
        self._history_held += in_memory(sum(map(len, lines[skip:])), len(lines) - skip, LINE_OVERHEAD)
        if self._batch_due():
            self._flush()

    def _artifact_done(self, delivered: bool) -> None:
        """An artifact record was handed to the backend: stored, or refused for good (said once by
        the retrier). One the run's abort interrupted is not done: the log keeps it for a sync."""
        if delivered or not self._aborted.is_set():
            self.progress.artifacts_done += 1

    def _batch_due(self) -> bool:
        """Whether the rows gathered go to the store now: a full batch, by rows or by bytes (a
        batch read back from the log after another must not pile up), or one waiting long enough."""
        if len(self._history) >= BATCH_ROWS or self._history_held >= BATCH_BYTES:
            return True
        return time.monotonic() - self._last_flush >= BATCH_SECONDS

    def tick(self) -> None:
        """Deliver what waited long enough (called when no record arrived for a while)."""
        if time.monotonic() - self._last_flush >= BATCH_SECONDS:
            self._flush()
        if self._keep_alive and self.backend is not None and self.progress.exit_result is None:
            try:
                self.backend.keep_alive()
            except StoreError as exc:  # a missed heartbeat loses nothing: the next tick tries again
                logger.debug("nbtrack: the run's heartbeat failed: %s", exc)

    def close(self) -> None:
        self._flush()
        if self.backend is not None:
            self.backend.close()

    def _on_run(self, record: pb.Record) -> None:
        result = pb.RunUpdateResult(run=record.run)
        # A resumed run's lines go after those already stored (the record says where, so a
        # replay of this log by `nbtrack sync` puts them at the same offsets).
        self._history_offset, self._output_offset = record.run.history_offset, record.run.output_offset
        self._first_line = record.run.history_offset
        self._events_offset = record.run.events_offset
        self._runtime_origin = record.run.start_time - record.run.runtime_offset
        recovering = self.setup is not None and self.setup.recover
        attempt = 0
        while True:
            try:
                self._start_run(record, result)
                break
            except Exception as exc:
                if self.backend is not None:
                    self.backend.abort()
                    self.backend.close()
                self.backend = self.progress.backend = None
                # A restarted process must reach the store to go on: a locked or unreachable
                # one is waited for. A new run's init() is waiting for this answer instead.
                if recovering and is_transient(exc) and not self._aborted.is_set():
                    attempt += 1
                    if self._retrier.backoff(exc, attempt):
                        continue
                logger.debug("nbtrack: could not start the run", exc_info=exc)
                if is_transient(exc):  # the driver's words, without the statement that failed
                    reason = f"{self._places.destination()}: {short_reason(exc)}"
                elif isinstance(exc, NbtrackError):
                    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                else:
                    reason = f"{type(exc).__name__}: {exc}"
                result.error.message = f"could not start the run: {reason}"
                self._retrier.failed = result.error.message
                break
        if attempt and self.backend is not None:
            self._retrier.recovered()
        self._reply(pb.Result(control=record.control, run_result=result))

    def _start_run(self, record: pb.Record, result: pb.RunUpdateResult) -> None:
        opener, setup = self._open_backend, self.setup
        self.backend = None if setup is None else opener(setup, record.run, self._notice)
        self.progress.backend = self.backend
        config = jsonutil.loads(record.run.config_json) if record.run.config_json else {}
        if self.backend is not None:
            entity, url = self.backend.upsert_run(record.run, config)
            result.run.entity, result.url = entity, url or ""
            if setup is not None and setup.recover:
                # The dead process's sender got this far; its lines are the log's lines.
                self._stored_through = self.backend.history_lines_stored

    def _event_line(self, stats: pb.StatsRecord) -> str:
        runtime = max(0.0, stats.timestamp - self._runtime_origin)
        line = {"_timestamp": stats.timestamp, "_runtime": runtime, **stats.items}
        if stats.cell:
            line["_cell"] = stats.cell
        return jsonutil.dumps_str(line)

    def _on_summary(self, summary: pb.SummaryRecord) -> None:
        update = jsonutil.loads(summary.update_json) if summary.update_json else {}
        if summary.full or self._summary is None:
            self._summary = update
        else:
            self._summary.update(update)
        for key in summary.remove:
            self._summary.pop(key, None)

    def _log_artifact(self, backend: Backend, artifact: pb.ArtifactRecord, staged: Path) -> None:
        """Deliver a logged artifact, then publish the version it became (the live panel's)."""
        version = backend.log_artifact(artifact, staged)
        self.progress.artifact_versions[logged_key(artifact)] = version

    def _artifact_not_stored(self, artifact: pb.ArtifactRecord) -> None:
        """Publish why a logged artifact's delivery was given up (Artifact.wait() says it at once).
        deliver() gives up only after a drop (last_dropped: this one's) or when the run is aborted."""
        aborted = self._aborted.is_set()
        why = "the run was stopped before it was stored" if aborted else self._retrier.last_dropped
        self.progress.artifact_failures[logged_key(artifact)] = why or "its delivery was given up"

    def _run_dir(self) -> Path | None:
        """The run's folder (its log's): where its saved files and staged artifacts wait."""
        return Path(self.setup.log_path).parent if self.setup is not None and self.setup.log_path else None

    def _on_files(self, files: pb.FilesRecord) -> None:
        run_dir = self._run_dir()
        for file in files.files:
            if run_dir is not None and self.backend is not None:
                self._retrier.deliver(self.backend.save_file, file.path, run_dir / RUN_FILES / file.path)

    def _on_exit(self, record: pb.Record) -> None:
        """Deliver what is left and mark the run: finished (or failed, crashed) only if the store has
        every row; otherwise the exit result names the rows it lacks and where they are."""
        self._flush()
        if self._aborted.is_set():
            return  # the user stopped waiting: the run stays "running", the log has the rest
        state = exit_state(record.exit.exit_code, record.exit.state)
        result = pb.ExitResult(state=state)
        dropped = self.progress.dropped
        in_log, lost = self._places.split_by_log(dropped)
        while lost.runs and self._places.log_may_recover():
            # Rows the store refused are not in the log yet, and the log is being retried (a
            # full disk): it may still get them. Wait rather than call them lost too early; a
            # shutdown ends the wait, and its answer counts exactly what neither has.
            if self._aborted.wait(0.5):
                return
            in_log, lost = self._places.split_by_log(dropped)
        failed = self._retrier.failed
        messages: list[str] = []
        if lost.runs:
            # Never a plain "finished" with holes: the run says it lost rows, and which.
            state = result.state = "crashed"
            result.rows_lost, result.lost_steps = lost.lines(), lost.steps_text()
            messages.append(
                f"{result.rows_lost} rows (steps {result.lost_steps}) are lost: the store refused them "
                f"({failed}) and the transaction log could not keep them ({self._places.log_trouble()})"
            )
        if in_log.runs:
            messages.append(
                f"{in_log.lines()} rows (steps {in_log.steps_text()}) are not in the store ({failed}); "
                f"they are in {self._places.where()}"
            )
        if not lost.runs and in_log.runs:
            result.state = "running"  # until `nbtrack sync` delivers the rest and marks it
        elif self.backend is not None and not self._retrier.deliver(
            self.backend.finish_run, state, record.exit.exit_code, record.exit.runtime
        ):
            if self._aborted.is_set():
                return
            result.state = "running"
        elif self._aborted.is_set():
            return  # finish_run() gave up when the user stopped waiting: the exit was not delivered
        failure = self._retrier.failed or (self.backend.failure if self.backend is not None else None)
        undelivered = self.backend.pending()[0] if self.backend is not None else 0
        if not messages and failure is not None:
            messages.append(f"{failure}; {self._places.advice()}")
        elif not messages and undelivered:
            messages.append(f"{undelivered} history rows were not delivered; {self._places.advice()}")
        if messages:
            result.error.message = "; ".join(messages)
        self.progress.exit_result = result
        self._reply(pb.Result(control=record.control, exit_result=result))

    def _flush(self) -> None:
        self._last_flush = time.monotonic()
        backend, deliver = self.backend, self._retrier.deliver  # no backend: nothing is delivered
        if self._history:
            lines, steps, offset = self._history, self._steps, self._history_offset
            self._history, self._steps, self._history_held = [], [], 0
            self._history_offset += len(lines)
            delivered = backend is not None and deliver(backend.write_history, offset, lines, steps)
            if not delivered and self._aborted.is_set():
                return  # not stored, not dropped: the log has them (or the process reports them lost)
            if not delivered:
                line = offset - self._first_line
                for index, step in enumerate(steps):
                    self.progress.dropped.add(line + index, step)
            self.progress.lines_handed += len(lines)
        if self._output:
            out, out_offset = self._output, self._output_offset
            self._output = []
            self._output_offset += len(out)
            if backend is not None:
                deliver(backend.write_output, out_offset, out)
        if self._events:
            events, events_offset = self._events, self._events_offset
            self._events = []
            self._events_offset += len(events)
            if backend is not None:
                deliver(backend.write_events, events_offset, events)
        if self._summary is not None:
            summary, self._summary = self._summary, None
            if backend is not None:
                deliver(backend.write_summary, summary)


class SenderThread(Worker[Item]):
    """Runs a Sender on the thread named "Sender", fed by the writer through the Feed."""

    idle_seconds = BATCH_SECONDS

    def __init__(self, sender: Sender, feed: Feed, on_fatal: OnFatal) -> None:
        self.sender = sender
        super().__init__("Sender", feed, on_fatal)

    def handle(self, item: Item) -> None:
        if isinstance(item, HistoryLines):
            self.sender.add_history(item.lines, item.steps)
        else:
            self.sender.handle(item)

    def idle(self) -> None:
        self.sender.tick()

    def finished(self) -> None:
        self.sender.close()

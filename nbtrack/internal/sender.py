"""The sender: all I/O towards the store or a server, in batches, after the writer made it durable.

`Sender` is a plain state machine over records, so the same code delivers a live run (wrapped in
`SenderThread`) and replays a transaction log (`nbtrack sync`). History and console lines are
addressed by their line number in the run, so replaying a log delivers the same lines to the
same offsets: a second sync replaces rather than duplicates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from operator import methodcaller
from pathlib import Path
from typing import Any

from nbtrack import jsonutil
from nbtrack.console_format import console_line
from nbtrack.errors import NbtrackError
from nbtrack.internal.backend import Backend, open_backend
from nbtrack.internal.worker import QueueWorker
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.settings import RUN_FILES

__all__ = ["Sender", "SenderThread", "exit_state"]

logger = logging.getLogger("nbtrack")

BATCH_ROWS = 5000  # lines per store write: large enough to amortise a transaction
BATCH_SECONDS = 0.05  # and a live run's rows are at most this late


def exit_state(record: pb.ExitRecord) -> str:
    return record.state or ("finished" if record.exit_code == 0 else "failed")


class Sender:
    """Turns records into backend calls; `reply` carries answers back to the user process."""

    def __init__(
        self,
        reply: Callable[[pb.Result], None],
        notice: Callable[[str], None],
        setup: pb.SetupRequest | None = None,
    ) -> None:
        self.setup = setup  # where the run goes; the handler sets it from the setup request
        self._reply = reply
        self._notice = notice
        self.backend: Backend | None = None
        self.exit_result: pb.ExitResult | None = None
        self._history: list[str] = []
        self._steps: list[int] = []
        self._history_offset = 0  # line number of _history[0]
        self._stored_through = 0  # recovering: lines below this are stored already
        self._rows_skipped = 0
        self._output: list[str] = []
        self._output_offset = 0
        self._events: list[str] = []  # system metrics, one JSON object a line
        self._events_offset = 0
        self._runtime_origin = 0.0  # the run's start, minus a resumed run's earlier runtime
        self._summary: dict[str, Any] | None = None
        self._metrics: dict[str, dict[str, str]] = {}
        self._last_flush = time.monotonic()
        self._failed: str | None = None  # first delivery error; reported once, at exit too
        # Why the transaction log cannot be written (the writer's own report), or None: decides
        # whether a delivery failure loses rows or only delays them.
        self.log_failure: Callable[[], str | None] = lambda: None

    @property
    def rows_stored(self) -> int:
        """History rows the store or server has acknowledged."""
        if self.backend is None:
            return 0
        return self.backend.rows_delivered + self._rows_skipped

    @property
    def bytes_pending(self) -> int:
        """Bytes of history on their way to the server (0 for the embedded store)."""
        return self.backend.pending()[1] if self.backend is not None else 0

    @property
    def retrying(self) -> bool:
        return self.backend is not None and self.backend.retrying

    def abort(self) -> None:
        """Stop waiting for an unreachable server: the transaction log keeps what is left."""
        if self.backend is not None:
            self.backend.abort()

    def handle(self, records: list[pb.Record]) -> None:
        for record in records:
            kind = record.WhichOneof("record_type")
            if kind == "history":
                if self._history_offset < self._stored_through and not self._history:
                    self._history_offset += 1  # a recovered line the store or server has
                    self._rows_skipped += 1
                    continue
                self._history.append(record.history.data_json.decode())
                self._steps.append(record.history.step)
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
                self._deliver(methodcaller("update_config", update, list(record.config.remove)))
            elif kind == "metric":
                metric = record.metric
                self._metrics[metric.name] = {
                    "name": metric.name,
                    "summary": metric.summary,
                    "step_metric": metric.step_metric,
                }
                metrics = list(self._metrics.values())
                self._deliver(methodcaller("set_metrics", metrics))
            elif kind == "files":
                self._on_files(record.files)
            elif kind == "exit":
                self._on_exit(record)
        if len(self._history) >= BATCH_ROWS or time.monotonic() - self._last_flush >= BATCH_SECONDS:
            self._flush()

    def tick(self) -> None:
        """Deliver what waited long enough (called when no record arrived for a while)."""
        if time.monotonic() - self._last_flush >= BATCH_SECONDS:
            self._flush()

    def close(self) -> None:
        self._flush()
        if self.backend is not None:
            self.backend.close()

    def _on_run(self, record: pb.Record) -> None:
        result = pb.RunUpdateResult(run=record.run)
        # A resumed run's lines go after those already stored (the record says where, so a
        # replay of this log by `nbtrack sync` puts them at the same offsets).
        self._history_offset, self._output_offset = record.run.history_offset, record.run.output_offset
        self._events_offset = record.run.events_offset
        self._runtime_origin = record.run.start_time - record.run.runtime_offset
        try:
            self.backend = None if self.setup is None else open_backend(self.setup, record.run, self._notice)
            config = jsonutil.loads(record.run.config_json) if record.run.config_json else {}
            if self.backend is not None:
                entity, url = self.backend.upsert_run(record.run, config)
                result.run.entity, result.url = entity, url or ""
                if self.setup is not None and self.setup.recover:
                    # The dead process's sender got this far; its lines are the log's lines.
                    self._stored_through = self.backend.history_lines_stored
        except Exception as exc:
            logger.exception("nbtrack: could not start the run")
            reason = str(exc) if isinstance(exc, NbtrackError) else f"{type(exc).__name__}: {exc}"
            result.error.message = f"could not start the run: {reason}"
            if self.backend is not None:
                self.backend.abort()
                self.backend.close()
            self.backend = None
            self._failed = result.error.message
        self._reply(pb.Result(control=record.control, run_result=result))

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

    def _on_files(self, files: pb.FilesRecord) -> None:
        run_dir = Path(self.setup.log_path).parent if self.setup is not None and self.setup.log_path else None
        for file in files.files:
            if run_dir is not None:
                self._deliver(methodcaller("save_file", file.path, run_dir / RUN_FILES / file.path))

    def _on_exit(self, record: pb.Record) -> None:
        self._flush()
        state = exit_state(record.exit)
        self._deliver(methodcaller("finish_run", state, record.exit.exit_code, record.exit.runtime))
        result = pb.ExitResult(state=state)
        failure = self._failed or (self.backend.failure if self.backend is not None else None)
        undelivered = self.backend.pending()[0] if self.backend is not None else 0
        if failure is not None:
            result.error.message = f"{failure}; {self._advice()}"
        elif undelivered:
            result.error.message = f"{undelivered} history rows were not delivered; {self._advice()}"
        self.exit_result = result
        self._reply(pb.Result(control=record.control, exit_result=result))

    def _flush(self) -> None:
        self._last_flush = time.monotonic()
        if self._history:
            lines, steps, offset = self._history, self._steps, self._history_offset
            self._history, self._steps = [], []
            self._history_offset += len(lines)
            self._deliver(methodcaller("write_history", offset, lines, steps))
        if self._output:
            out, out_offset = self._output, self._output_offset
            self._output = []
            self._output_offset += len(out)
            self._deliver(methodcaller("write_output", out_offset, out))
        if self._events:
            events, events_offset = self._events, self._events_offset
            self._events = []
            self._events_offset += len(events)
            self._deliver(methodcaller("write_events", events_offset, events))
        if self._summary is not None:
            summary, self._summary = self._summary, None
            self._deliver(methodcaller("write_summary", summary))

    def _advice(self) -> str:
        """What a delivery failure means for the user's rows."""
        if self.log_failure() is None:
            return "the transaction log keeps every row (replay it with `nbtrack sync`)"
        return "the transaction log could not be written either, so the rows not stored are lost"

    def _deliver(self, call: Callable[[Backend], object]) -> bool:
        """Run one backend call; a failure is reported once and the data stays in the log."""
        if self.backend is None:
            return False
        try:
            call(self.backend)
            return True
        except Exception as exc:
            if self._failed is None:
                self._failed = f"could not write to the store: {type(exc).__name__}: {exc}"
                logger.exception("nbtrack: %s", self._failed)
                self._notice(f"{self._failed}; {self._advice()}")
            return False


class SenderThread(QueueWorker["list[pb.Record]"]):
    """Runs a Sender on the thread named "Sender", fed by the writer."""

    idle_seconds = BATCH_SECONDS

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        super().__init__("Sender")

    def handle(self, item: list[pb.Record]) -> None:
        try:
            self.sender.handle(item)
        except Exception:  # never lose the thread: the log still has everything
            logger.exception("nbtrack: sender failed on a batch of %d records", len(item))

    def idle(self) -> None:
        self.sender.tick()

    def finished(self) -> None:
        self.sender.close()

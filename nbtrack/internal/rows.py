"""A run's rows: the step each log() call gets, commit=False calls merged, the record each row becomes.

A row is committed at the current step, which then goes up by one. log(step=N) moves the step to
N, committing a row still pending at the old step; a step below the current one is refused with
a notice naming it, unless a re-run cell logs it (a step below the current one from a different
cell than the last row's): that starts a new attempt of the run, whose rows carry `_attempt`
(provenance.py). commit=False merges the call into the pending row, which the next call that
commits or moves the step commits (or finish()).

Each committed row updates the summary, the newest value of every key and the sampled history
(what a live panel shows), and becomes a history record: its JSON, with `_step`, `_runtime`,
`_timestamp` (and `_cell`, `_attempt` in a notebook), is the line the store keeps. A recovered
run's rows are read back from its log the same way (`recover`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import orjson

from nbtrack import jsonutil
from nbtrack.internal.progress import StepRanges
from nbtrack.internal.provenance import Provenance
from nbtrack.internal.sampler import SampledHistory
from nbtrack.internal.summary import SummaryKeeper
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.vocabulary import STEP_MAX

__all__ = ["Rows"]


class Rows:
    """The rows of one run, in the order the handler sees the log() calls.

    summary and provenance are the handler's (other records change them too); notice tells the
    user why a call was not logged or started a new attempt.
    """

    def __init__(self, summary: SummaryKeeper, provenance: Provenance, notice: Callable[[str], None]) -> None:
        self._summary = summary
        self._provenance = provenance
        self._notice = notice
        self.lines = StepRanges()  # every row of this log: its line and step
        self.step = 0  # the step the next committed row gets
        self.last_step: int | None = None  # the step of the last committed row (what people see)
        self.logged = 0  # rows committed (a recovered log's included)
        self.latest: dict[str, Any] = {}  # the newest value of every key, for a live panel
        self.sampled = SampledHistory()
        self.start_time = time.time()  # replaced by the run's own start time (start())
        # Recovering: calls up to this seq are in the log (the last row read back from it).
        self.logged_through = 0
        self._pending: dict[str, Any] | None = None  # commit=False rows merged so far
        self._pending_time = 0.0
        self._pending_finite = True  # known free of NaN/inf, so the fast encoder is exact
        self._call_seq = 0  # the seq of the log() call being handled
        self._pending_first_seq = 0  # the oldest call merged into the pending row
        self._pending_last_seq = 0

    def start(self, run: pb.RunRecord) -> None:
        """The run's first row gets its starting step; a resumed run's _runtime goes on from where
        it stopped, not from this segment's start."""
        self.start_time = run.start_time - run.runtime_offset
        self.step = run.starting_step
        if run.resumed and run.starting_step > 0:  # the earlier segments' last row
            self.last_step = run.starting_step - 1

    def acknowledgeable(self, seq: int) -> int:
        """How far the user side may forget once message seq is handled: all of it, or up to just
        before the oldest call of the row still pending (it is not in the log yet)."""
        return self._pending_first_seq - 1 if self._pending is not None else seq

    def add_calls(self, batch: pb.LogCallsRequest) -> list[pb.Record]:
        """A batch of log() calls; the history records of the rows they committed."""
        try:
            calls = orjson.loads(batch.calls_json)
            finite = True
        except orjson.JSONDecodeError:  # NaN or infinity inside: the standard parser reads them
            calls = json.loads(batch.calls_json)
            finite = False
        out: list[pb.Record] = []
        seq = batch.first_seq  # 0: unnumbered (a replay), and rows carry no seq
        if seq and seq <= self.logged_through:  # recovering: the log has the first of these
            calls = calls[self.logged_through - seq + 1 :]
            seq = self.logged_through + 1
        for data, step, commit, timestamp in calls:
            self._call_seq = seq
            if step is None and commit and self._pending is None:
                self._emit(data, timestamp, finite, out, seq)  # the common case: a plain log(row)
            else:
                self._log_call(data, step, commit, timestamp, finite, out)
            if seq:
                seq += 1
        return out

    def _log_call(
        self,
        data: dict[str, Any],
        step: int | None,
        commit: bool,
        timestamp: float,
        finite: bool,
        out: list[pb.Record],
    ) -> None:
        if step is not None and step != self.step:
            if step < self.step:
                if not self._provenance.is_rerun():
                    self._notice(
                        f"step {step} {self._step_floor()}: the row with keys "
                        f"{sorted(data)[:5]} was not logged "
                        "(steps must not go backwards; omit step= to let nbtrack count)"
                    )
                    return
                self.commit(out)
                back_from = self.last_step
                attempt = self._provenance.new_attempt() + 1  # people count attempts from 1
                self._notice(
                    f"attempt {attempt} started at step {step}: cell [{self._provenance.cell}] went "
                    f"back from step {back_from} (a re-run cell); its rows are kept as attempt "
                    f"{attempt}, apart from the earlier attempts"
                )
            else:
                self.commit(out)  # a row pending at the old step is complete now
            self.step = step
        pending = self._pending
        if pending is None:
            self._pending = data
            self._pending_finite = finite
            self._pending_first_seq = self._call_seq
        else:
            pending.update(data)
            self._pending_finite = self._pending_finite and finite
        self._pending_last_seq = self._call_seq
        self._pending_time = timestamp
        if commit:
            self.commit(out)

    def shown_step(self) -> int:
        """The step people see (panel, status, web UI): the last step logged, -1 before any row."""
        return -1 if self.last_step is None else self.last_step

    def _step_floor(self) -> str:
        """Why a step is too low, naming the step it must not go below (what the user logged)."""
        if self._pending is not None:  # a commit=False row is being built at self.step
            return f"is below step {self.step}, the step of the row still being built (commit=False)"
        if self.last_step is None:
            return f"is below step {self.step}, the run's first step"
        return f"is not after step {self.last_step}, the last step logged"

    def commit(self, out: list[pb.Record]) -> None:
        """Emit the pending row, if any, at the current step."""
        row = self._pending
        if row is not None:
            self._pending = None
            self._emit(row, self._pending_time, self._pending_finite, out, self._pending_last_seq)

    def _emit(
        self, row: dict[str, Any], timestamp: float, finite: bool, out: list[pb.Record], seq: int
    ) -> None:
        """Commit row at the current step; its JSON is the line the store keeps."""
        step = self.step
        if step > STEP_MAX:  # after a row at the largest step, a plain log() has nowhere to go
            self._notice(
                f"the row with keys {sorted(row)[:5]} was not logged: it would be at step {step}, past "
                f"the largest step, {STEP_MAX} (2**53 - 1)"
            )
            return
        self.step = step + 1
        self.last_step = step
        self._summary.update(row)
        self.latest.update(row)
        self.sampled.add_row(step, row)
        runtime = timestamp - self.start_time
        if runtime < 0.0:
            runtime = 0.0
        row["_step"] = step
        row["_runtime"] = runtime
        row["_timestamp"] = timestamp
        if self._provenance.cell:  # a notebook's run: the cell (and attempt) the row came from
            self._provenance.stamp(row, step)
        record = pb.Record()
        history = record.history  # filling fields in place is twice as fast as keyword construction
        history.step = step
        history.runtime = runtime
        history.timestamp = timestamp
        history.data_json = orjson.dumps(row) if finite else jsonutil.dumps(row)
        history.seq = seq
        out.append(record)
        self.lines.add(self.logged, step)
        self.logged += 1

    def recover(self, record: pb.Record) -> None:
        """A row read back from the log of a process that died: the step, summary, live values and
        cells it made then."""
        history = record.history
        row = jsonutil.loads(history.data_json)
        for key in ("_step", "_runtime", "_timestamp"):
            row.pop(key, None)
        self._provenance.recover_row(history.step, row.pop("_cell", 0), row.pop("_attempt", 0))
        self.step = history.step + 1
        self.last_step = history.step
        self._summary.apply(record, row)
        self.latest.update(row)
        self.sampled.add_row(history.step, row)
        self.lines.add(self.logged, history.step)
        self.logged += 1
        self.logged_through = max(self.logged_through, history.seq)

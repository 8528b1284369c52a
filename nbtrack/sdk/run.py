"""The user side of one run: log() costs microseconds, every wait is bounded, nothing hangs.

Longer than most modules on purpose: `Run` is the user's whole surface (its properties, log,
save, define_metric, the requests, finish and the fork rule), so one file reads as its API. The
mechanics live beside it: start_records.py (what the internal process is told), exit_wait.py
(finish's bounded wait), finish_words.py (what finish says), media_writer.py (media files),
run_state.py (config and summary), and transport/ (the connection to the internal process).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nbtrack import jsonutil
from nbtrack.errors import InternalProcessError, UsageError
from nbtrack.internal.summary import parse_summary_kinds
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.run_names import readable_name
from nbtrack.sdk import console_capture
from nbtrack.sdk.alerts import RunAlerts
from nbtrack.sdk.exit_wait import STALL_TIMEOUT, STOP_ANSWER, StoppedWaiting, wait_for_exit
from nbtrack.sdk.finish_words import FinishWords
from nbtrack.sdk.media_writer import RunMedia
from nbtrack.sdk.resume import ResumePoint
from nbtrack.sdk.run_state import Config, NotebookLink, RunLink, Summary
from nbtrack.sdk.start_records import run_record, setup_request
from nbtrack.sdk.values import check_file_name, check_row, check_step
from nbtrack.settings import Settings
from nbtrack.transport.connection import RunConnection
from nbtrack.transport.mailbox import Slot
from nbtrack.transport.outbox import ConsoleLine
from nbtrack.transport.process import InternalProcess
from nbtrack.vocabulary import ALERT_WAIT_SECONDS, exit_state

if TYPE_CHECKING:
    from nbtrack.api import Api
    from nbtrack.artifacts.artifact import Artifact
    from nbtrack.artifacts.stored import StoredArtifact

__all__ = ["Run"]

logger = logging.getLogger("nbtrack")

SPILL_FILE = "outbox.spill"  # in the run's folder: rows past the outbox's memory limit
START_TIMEOUT = 30.0  # a cold internal process answers in well under a second
REQUEST_TIMEOUT = 10.0
FINISH_TIMEOUT = 300.0  # online: finish() waits this long for an unreachable server by default
HANDOFF_TIMEOUT = 10.0  # log_artifact() waits this long for its record to leave this process

_runs: weakref.WeakSet[Run] = weakref.WeakSet()  # every Run of this process, for _after_fork_in_child


class Run:
    """A live run. Create it with `nbtrack.init()`; end it with `finish()` or a `with` block."""

    def __init__(
        self,
        settings: Settings,
        *,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        notes: str | None = None,
        group: str | None = None,
        job_type: str | None = None,
        process: InternalProcess | None = None,
        live_interval: float = 0.0,
        resume_point: ResumePoint | None = None,
    ) -> None:
        """process: a started (warm spare) internal process to use; live_interval: see on_live;
        resume_point: the stored run this one continues (config already merged by init())."""
        self._settings = settings
        self._owner_pid = os.getpid()  # the process whose threads and pipes serve this run
        self._disowned = False  # set in a forked child: the run is its parent's
        self._resume_point = resume_point
        # Without a name: the stored run's (resumed), else a readable one made from the id.
        self._name = name or (resume_point and resume_point.display_name) or readable_name(settings.run_id)
        self._entity = settings.entity  # the server may name it (online, the API key's entity)
        self._url: str | None = None
        self._finished = False
        self._closing = threading.Lock()  # log() queues and finish() closes under it, never both
        self._staging = threading.Lock()  # log_artifact() copies files under it, one call at a time
        self._exit_state: str | None = None
        self.notices: list[str] = []  # warnings the internal process sent (also logged)
        # Alerts raised here and kept ({"title", "text", "level", "time"}), oldest first; the
        # notebook panel shows the newest. on_alert: called with each, on the caller's thread.
        self._alerts = RunAlerts(settings.run_id, self._send, self._warn)
        self.on_alert: list[Callable[[Run, dict[str, Any]], object]] = []
        self._exit_slot: Slot | None = None  # the exit record's reply, once finish() has sent it
        # Called on the results thread with each LiveResult (every live_interval while it changes).
        self.on_live: Callable[[pb.LiveResult], None] | None = None
        self._live_interval = live_interval
        self.on_finishing: list[Callable[[Run], object]] = []  # called as finish() begins; must not raise
        self.on_finished: list[Callable[[Run], object]] = []  # called once finish() is done
        self.on_process_gone: list[Callable[[Run], object]] = []  # the internal process died mid-run
        self._final_summary: dict[str, Any] | None = None
        self._media = RunMedia(settings.files_dir, self._send_file, self._warn)
        link = RunLink(self._check_live, self._send, self.get_summary)
        self.notebook_link = NotebookLink(self._send_cell, self._send_output)  # the extension's way in
        self._config = Config(link, config or {})
        self._summary = Summary(link)
        self._connection: RunConnection | None = None  # None: disabled mode
        if settings.mode != "disabled":
            self._start(process or InternalProcess(), tags or [], notes or "", group or "", job_type or "")
            if settings.console:  # a script's print()s become console lines (none in a notebook)
                console_capture.attach(self, self._send_output, self.pending_rows, self._warn)
        elif process is not None:
            process.kill()  # a spare offered to a disabled run is not needed
        atexit.register(self._finish_at_exit)
        _runs.add(self)

    # -- properties --------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._settings.run_id

    @property
    def name(self) -> str:
        return self._name

    @property
    def project(self) -> str:
        return self._settings.project

    @property
    def entity(self) -> str:
        return self._entity

    @property
    def mode(self) -> str:
        return self._settings.mode

    @property
    def dir(self) -> Path:
        """The run's folder; its transaction log is the one *.nbt file in it."""
        return self._settings.run_dir

    @property
    def url(self) -> str | None:
        """The run's page on a tracking server; None when no server is known (local mode)."""
        return self._url

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def restarts(self) -> int:
        """Internal processes that died (or hung) mid-run and were replaced."""
        return self._connection.restarts if self._connection is not None else 0

    @property
    def rows_lost(self) -> int:
        """Rows the run could not keep: logged after it lost its internal process for good, or
        reported lost when finish() stopped waiting (each was counted, and said)."""
        return self._connection.rows_lost if self._connection is not None else 0

    @property
    def save_code(self) -> bool | None:
        """init(save_code=...): store the code run with it (None: as the extension's config says)."""
        return self._settings.save_code

    @property
    def config(self) -> Config:
        return self._config

    @config.setter
    def config(self, value: object) -> None:
        # A plain attribute would take the dict and store none of it.
        raise AttributeError("run.config cannot be replaced; add keys with run.config.update({...})")

    @property
    def summary(self) -> Summary:
        return self._summary

    @summary.setter
    def summary(self, value: object) -> None:
        raise AttributeError("run.summary cannot be replaced; set keys with run.summary.update({...})")

    @property
    def last_image(self) -> tuple[str, Any] | None:
        """(file name, uint8 pixels) of the newest image logged (the notebook panel's preview)."""
        return self._media.last_image

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """The alerts this run raised in this process, oldest first: {"title", "text", "level", "time"}."""
        return self._alerts.kept

    @property
    def state(self) -> str:
        return self._exit_state or ("finished" if self._finished else "running")

    def __repr__(self) -> str:
        return f"<nbtrack.Run {self.entity}/{self.project}/{self.id} ({self.name}) {self.state}>"

    # -- logging -----------------------------------------------------------------------------

    def log(self, data: dict[str, Any], step: int | None = None, commit: bool = True) -> None:
        """Record one row of metrics; returns at once. Bad input raises and logs nothing.

        Values may be media (`nbtrack.Image`, `Histogram`, `Table`, see media.py): an image or a
        table is written to a run file by the "nbtrack-media" thread, its reference goes in the row.
        """
        if self._finished:
            raise self._closed("log()")
        row, plain = check_row(data)
        if step is not None:
            step = check_step(step)
        if commit is not True and commit is not False:
            raise TypeError(f"commit must be True or False, not {type(commit).__name__}")
        connection = self._connection
        if connection is None:
            return  # disabled mode
        # Checked again under the lock finish() takes to close the run: a call that returns has
        # queued its row before the exit record, one that raises has queued nothing.
        with self._closing:
            if self._finished:
                raise self._closed("log()")
            if plain:
                connection.publish_log((row, step, commit, time.time()))
            else:  # NaN/inf (the exact encoder) or media (files named now, written later)
                files = self._media.name_files(row)
                connection.publish_log((row, step, commit, time.time()), exact=True)
                if files:
                    self._media.write(files)

    def _on_connection_lost(self, message: str) -> None:
        """The run has no internal process any more (RunConnection says why and what it cost)."""
        if self._finished:
            return
        message += f". Everything before that is in {self._settings.log_path}"
        self.notices.append(message)
        logger.error("nbtrack: %s", message)
        for callback in self.on_process_gone:
            callback(self)

    def define_metric(self, name: str, summary: str = "last", step_metric: str | None = None) -> None:
        """How the summary keeps `name` (a key or a glob): last, min, max, mean, none, or 'min,max'."""
        self._check_live("define_metric()")
        if not isinstance(name, str) or not name:
            raise TypeError("define_metric() needs a metric name (a non-empty str)")
        if not isinstance(summary, str):
            raise TypeError(
                f"define_metric(): summary must be a str such as 'min,max', not {type(summary).__name__}"
            )
        if step_metric is not None and not isinstance(step_metric, str):
            raise TypeError(
                f"define_metric(): step_metric must be a metric name, not {type(step_metric).__name__}"
            )
        parse_summary_kinds(summary)
        self._send(
            pb.Record(metric=pb.MetricRecord(name=name, summary=summary, step_metric=step_metric or ""))
        )

    def save(self, path: str | os.PathLike[str], name: str | None = None) -> str:
        """Keep a copy of a file with the run (uploaded to the server in online mode).

        The copy is taken now, into the run's folder, so later changes to the file do not
        change what is stored and `nbtrack sync` can deliver it again. Returns the file's name.
        """
        self._check_live("save()")
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"save(): there is no file at {source}")
        name = check_file_name(source.name if name is None else name)
        if self._connection is None:
            return name  # disabled mode
        target = self._settings.files_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        self._send_file(name)
        return name

    def log_artifact(self, artifact: Artifact, aliases: Iterable[str] | None = None) -> Artifact:
        """Log the artifact as a new version of its collection (v0, v1, ... numbered when stored),
        with `latest` and the aliases given. Its files are copied into the run's folder now (checked
        against what add_file hashed: a file changed since raises ValueError naming it, and nothing
        is logged), so later changes to them change nothing stored; the version reaches the store
        (or `nbtrack sync`'s destination) through the transaction log like every record. The same
        files again are the same version. Returns the artifact: `artifact.wait()` then waits until
        it is stored and sets `artifact.version` ("v3"), as W&B's does."""
        from nbtrack.artifacts.artifact import Artifact
        from nbtrack.internal.run_artifact_list import logged_key
        from nbtrack.sdk.artifact_wait import LoggedVersion
        from nbtrack.sdk.run_artifacts import artifact_record, check_aliases

        self._check_live("log_artifact()")
        if not isinstance(artifact, Artifact):
            raise TypeError(f"log_artifact() takes an nbtrack.Artifact, not {type(artifact).__name__}")
        names = check_aliases(aliases)
        if self._connection is None:
            artifact.logged_as(LoggedVersion(self, artifact.name, artifact.digest, ""))
            return artifact  # disabled mode
        with self._staging:  # one staging at a time: what a failed one removes, no other relies on
            record = artifact_record(artifact, names, self._settings.run_dir)
        with self._closing:
            if self._finished:
                raise self._closed("log_artifact()")
            self._send(pb.Record(artifact=record))
        # Out of this process before returning: one killed right after (the OOM killer, a
        # cancelled job) must not leave the staged files without the record that names them.
        # Past the bound (a stalled internal process) the record waits in the outbox as any.
        self._connection.outbox.flush(HANDOFF_TIMEOUT)
        artifact.logged_as(LoggedVersion(self, record.name, record.digest, logged_key(record)))
        return artifact

    def use_artifact(self, name: str | StoredArtifact, type: str | None = None) -> StoredArtifact:
        """The committed version "name:v3", "name:alias" (no ref: latest), "project/name:ref" or
        "entity/project/name:ref" (the run's entity and project where left out), or a
        `StoredArtifact`; its `download()`, `files()` and `metadata` read it. The run is recorded
        as its user (lineage), by its version number. type: if given, the artifact must be of it.
        Online mode reads the run's server (any project the run's key may read); local and offline
        modes the store under the run's root (offline: only what is there already)."""
        from nbtrack.artifacts.stored import StoredArtifact
        from nbtrack.sdk.run_artifacts import parse_artifact_path, resolve_artifact, use_record

        self._check_live("use_artifact()")
        if self.mode == "disabled":
            raise UsageError("use_artifact(): a disabled run has no store to read artifacts from")
        if isinstance(name, StoredArtifact):
            stored = name
        else:
            path = parse_artifact_path(name, self.entity, self.project)
            stored = resolve_artifact(self._settings, *path)
        if type is not None and stored.type != type:
            raise UsageError(
                f"use_artifact(): artifact {stored.name} is of type {stored.type!r}, not {type!r}"
            )
        with self._closing:
            if self._finished:
                raise self._closed("use_artifact()")
            self._send(pb.Record(use_artifact=use_record(stored)))
        return stored

    def alert(
        self,
        title: str,
        text: str,
        level: str = "INFO",
        wait_duration: float | timedelta = ALERT_WAIT_SECONDS,
    ) -> None:
        """Raise an alert: kept with the run, listed on its page, in the notebook panel and by the
        read API (`StoredRun.alerts`). level: "INFO", "WARN" or "ERROR". An alert whose title the
        run already has within wait_duration (seconds or a timedelta; 60 by default, as W&B's) is
        not kept again, so an alert in a loop does not flood the run."""
        self._check_live("alert()")
        alert = self._alerts.raise_alert(title, text, level, wait_duration)
        if alert is None:
            return
        for hook in list(self.on_alert):
            hook(self, alert)

    def _send_file(self, name: str) -> None:
        """A file of the run is in its files folder: deliver it (save(), media)."""
        self._send(pb.Record(files=pb.FilesRecord(files=[pb.FilesRecord.File(path=name, policy="now")])))

    def _send_cell(self, cell: pb.CellRecord) -> None:
        """The extension: a notebook cell began (rows and console lines after it are its)."""
        if not self._finished:
            self._send(pb.Record(cell=cell))

    def _send_output(self, stream: str, line: str, timestamp: float) -> None:
        """The extension: one console line (stream "stdout" or "stderr"), batched by the outbox."""
        if not self._finished and self._connection is not None:
            kind = pb.OutputRecord.STDERR if stream == "stderr" else pb.OutputRecord.STDOUT
            self._connection.publish_console(ConsoleLine(kind, line, timestamp))

    def _send(self, record: pb.Record) -> None:
        if self._connection is not None:
            self._connection.publish(record)

    def pending_rows(self) -> int:
        """log() calls and records not yet handed to the internal process."""
        return self._connection.pending() if self._connection is not None else 0

    def _check_live(self, what: str) -> None:
        if self._finished:
            raise self._closed(what)

    def _closed(self, what: str) -> UsageError:
        """The error for a call on a run this process can no longer write to."""
        if self._disowned:
            return UsageError(
                f"{what}: run {self.id} belongs to process {self._owner_pid}; a forked child (this is "
                f"pid {os.getpid()}) cannot write to it. Start a run of its own here with nbtrack.init()"
            )
        return UsageError(f"{what}: run {self.id} is finished; start a new one with nbtrack.init()")

    def _disown(self) -> None:
        """Called in a forked child. fork copies only the calling thread, so the outbox and results
        threads that serve this run are not there: rows logged in the child would never leave it,
        and finish() would wait for answers that cannot come. Every call now fails at once instead
        (finish() and the exit hook do nothing). transport/process.py lets go of the child's copies
        of the pipes."""
        self._disowned = True
        self._finished = True
        self._exit_slot = None
        atexit.unregister(self._finish_at_exit)
        if self._connection is not None:
            self._connection.disown()

    # -- requests ----------------------------------------------------------------------------

    def _request(self, request: pb.Request, what: str, timeout: float = REQUEST_TIMEOUT) -> pb.Result:
        if self._disowned:
            raise self._closed(what)
        if self._connection is None:
            raise InternalProcessError(f"{what}: run {self.id} has no internal process (mode={self.mode})")
        return self._connection.request(request, what, timeout)

    def get_summary(self) -> dict[str, Any]:
        if self._disowned:  # the parent's summary moves on without us: an old copy would mislead
            raise self._closed("reading the summary")
        if self._final_summary is not None or self._connection is None or self._finished:
            return dict(self._final_summary or {})
        return self._request_summary()

    def _request_summary(self) -> dict[str, Any]:
        result = self._request(pb.Request(get_summary=pb.GetSummaryRequest()), "reading the summary")
        return dict(jsonutil.loads(result.response.get_summary.summary_json))

    def sampled_history(self, keys: list[str] | None = None) -> dict[str, tuple[list[int], list[float]]]:
        """The handler's bounded sample of each metric: key -> (steps, values)."""
        request = pb.Request(sampled_history=pb.SampledHistoryRequest(keys=keys or []))
        series = self._request(request, "reading the sampled history").response.sampled_history.series
        return {s.key: (list(s.steps), list(s.values)) for s in series}

    def _artifact_version(self, key: str, timeout: float) -> pb.ArtifactVersionResponse:
        """What the internal process knows of the logged artifact `key` (Artifact.wait())."""
        request = pb.Request(artifact_version=pb.ArtifactVersionRequest(key=key))
        timeout = min(timeout, REQUEST_TIMEOUT)
        return self._request(request, "asking an artifact's version", timeout).response.artifact_version

    def _connection_lost(self) -> str | None:
        """Why the internal process is gone for good (None: it is not)."""
        return None if self._connection is None else self._connection.lost_reason

    def _sync_command(self) -> str:
        return self._words.sync_command()

    def _reading_api(self) -> Api:
        """An Api on where this run's data goes: its server (online), else its folder's store."""
        from nbtrack.api import Api

        settings = self._settings
        if settings.mode == "online":
            return Api(base_url=settings.base_url, api_key=settings.api_key)
        return Api(dir=settings.root)

    def status(self) -> pb.StatusResponse:
        return self._request(pb.Request(status=pb.StatusRequest()), "reading the run status").response.status

    # -- lifecycle ---------------------------------------------------------------------------

    def _start(
        self, process: InternalProcess, tags: list[str], notes: str, group: str, job_type: str
    ) -> None:
        settings = self._settings
        setup = setup_request(settings, self._live_interval)
        connection = self._connection = RunConnection(
            process,
            setup,
            run_id=settings.run_id,
            spill_path=settings.run_dir / SPILL_FILE,
            memory_limit=settings.max_memory,
            hang_timeout=settings.hang_timeout,
            warn=self._warn,
            on_result=self._on_result,
            on_gone=self._on_connection_lost,
        )
        run = run_record(
            settings,
            name=self._name,
            config=self.config.as_dict(),
            tags=tags,
            notes=notes,
            group=group,
            job_type=job_type,
            resume_point=self._resume_point,
        )
        # Not retained: a process that replaces a dead one reads the run from the log.
        slot = connection.ask(pb.Record(run=run), retain=False, always_send=True)
        try:
            result = slot.wait(START_TIMEOUT, "starting the run").run_result
        except InternalProcessError:
            self._abandon()
            raise
        if result.error.message:
            self._finished = True  # the process exits on purpose: not a death to report
            connection.shutdown()
            raise InternalProcessError(f"run {self.id}: {result.error.message}")
        self._entity = result.run.entity or self._entity
        self._url = result.url or None
        connection.started = True
        connection.publish(
            pb.Record(request=pb.Request(run_start=pb.RunStartRequest()), control=pb.Control(local=True))
        )

    def finish(self, exit_code: int = 0, timeout: float | None = None) -> None:
        """End the run: wait until every row is durable and delivered, then stop the internal process.

        timeout: the longest wait, in seconds (default: online FINISH_TIMEOUT; local and offline
        as long as the internal process makes progress). When it passes, finish() returns and
        says how many rows are not stored yet, where they are, and the `nbtrack sync` command that
        delivers them. Interrupted (Ctrl-C), the run is left finishing: call finish() again to
        wait for the rest (at exit, that happens by itself).
        """
        if self._finished and self._exit_slot is None:
            return
        if not isinstance(exit_code, int) or isinstance(exit_code, bool):
            raise TypeError(f"exit_code must be an int, not {type(exit_code).__name__}")
        if timeout is not None and (not isinstance(timeout, int | float) or timeout < 0):
            raise TypeError(f"timeout must be a number of seconds >= 0, not {timeout!r}")
        if not self._finished:
            for hook in list(self.on_finishing):
                hook(self)  # may still log and save (the extension saves the notebook's code)
            console_capture.detach(self)  # what is printed from now on is not the run's
        with self._closing:  # waits for a log() call in progress on another thread
            self._finished = True
        atexit.unregister(self._finish_at_exit)
        _forget_current(self)
        if self._connection is None:
            self._exit_state = exit_state(exit_code)
            return
        if timeout is None and self.mode == "online":
            timeout = FINISH_TIMEOUT
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        interrupted = stopped = False
        try:
            media = self._media.writer
            if media is not None:
                wait = STALL_TIMEOUT if deadline is None else max(0.0, deadline - time.monotonic())
                if not media.drain(wait) and media.failure is None:
                    self._warn(
                        f"run {self.id}: {media.pending} media files were still being written when "
                        f"finish() stopped waiting for them ({wait:.1f} s): this process goes on writing "
                        f"them into {self._settings.files_dir} (they are lost if it ends first); "
                        f"`{self._words.sync_command()}` then delivers them"
                    )
                media.stop(0.0)  # no more files can come: its thread ends once it wrote the rest
            exit_result = self._wait_for_exit(exit_code, deadline)
            self._exit_state = exit_result.state
            if exit_result.error.message:  # it says what became of the rows
                self._warn(f"run {self.id}: {exit_result.error.message} (log: {self._settings.log_path})")
            spill_loss = self._connection.spill_loss()
            if spill_loss is not None:
                self._warn(f"run {self.id}: {spill_loss}; the run is marked {exit_result.state}")
            self._final_summary = self._fetch_summary()
        except StoppedWaiting as waiting:
            # Stop the internal process now, letting it write what it holds to the log: its answer
            # says exactly what the store lacks and whether the log has it.
            stopped = True
            answer = self._connection.shutdown(request_timeout=STOP_ANSWER, exit_timeout=0.0, kill=False)
            self._exit_state = answer.exit_result.state if answer is not None else "running"
            if answer is not None:
                self._connection.count_lost(answer.exit_result.rows_lost)  # as the message says
            if answer is not None:
                self._warn(self._words.answered(waiting.why, answer))
            else:
                lost = self._connection.end_if_hung()
                unlogged, here = self._connection.not_acknowledged(), self._connection.unsent()
                self._warn(self._words.unanswered(waiting.why, lost, unlogged, here))
            self._report_at_exit()
        except InternalProcessError:
            if self._connection.lost_reason is None:
                raise
            self._exit_state = "running"  # in the store, until `nbtrack sync` ends it
            self._warn(self._words.lost_for_good(self._connection.lost_reason, self._connection.rows_lost))
        except KeyboardInterrupt:
            # The exit record is on its way and the internal process goes on delivering: keep
            # it, so that a second finish() (or the one at exit) waits for the same answer.
            interrupted = True
            if self._exit_slot is None:
                self._finished = False  # interrupted before the exit record left: start over
            atexit.register(self._finish_at_exit)
            raise
        finally:
            if not interrupted:
                self._finish_done(stopped)

    def _finish_done(self, stopped: bool) -> None:
        """stopped: finish() stopped waiting and has already asked the internal process to stop."""
        self._exit_slot = None
        try:
            if self._connection is not None and not stopped:
                self._connection.shutdown()
        finally:
            for callback in self.on_finished:
                try:
                    callback(self)
                except Exception:
                    logger.exception("nbtrack: a callback after finishing run %s failed", self.id)

    def _warn(self, message: str) -> None:
        self.notices.append(message)
        logger.warning("nbtrack: %s", message)

    def _wait_for_exit(self, exit_code: int, deadline: float | None) -> pb.ExitResult:
        """Send the exit record (unless an interrupted finish() did) and wait for its result."""
        connection = self._connection
        assert connection is not None
        if self._exit_slot is None:
            record = pb.Record(exit=pb.ExitRecord(exit_code=exit_code))
            self._exit_slot = connection.ask(record, always_send=True)
        return wait_for_exit(connection, self._exit_slot, deadline, self._words)

    @property
    def _words(self) -> FinishWords:
        settings = self._settings
        return FinishWords(self.id, self.mode, settings.log_path, settings.base_url, settings.hang_timeout)

    def _report_at_exit(self) -> None:
        """finish() stopped waiting with rows still in this process: if it ends before they are
        handed over, they are lost, and that is said (and counted) then."""
        assert self._connection is not None
        if self._connection.unsent():
            atexit.register(self._connection.report_unsent, self.id)

    def _fetch_summary(self) -> dict[str, Any]:
        try:
            return self._request_summary()
        except InternalProcessError:
            return {}

    def _abandon(self) -> None:
        console_capture.detach(self)
        self._finished = True
        atexit.unregister(self._finish_at_exit)
        if self._connection is not None:
            self._connection.abandon()

    def _finish_at_exit(self) -> None:
        """A script that ends without finish(): finish for it (failed if it ended by an exception)."""
        try:
            self.finish(exit_code=1 if getattr(sys, "last_value", None) is not None else 0)
        except Exception as exc:
            print(f"nbtrack: could not finish run {self.id} at exit: {exc}", file=sys.stderr)

    def _on_result(self, result: pb.Result) -> None:
        kind = result.WhichOneof("result_type")
        if kind == "notice":
            self.notices.append(result.notice.message)
            logger.warning("nbtrack: %s", result.notice.message)
        elif kind == "live" and self.on_live is not None:
            self.on_live(result.live)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)


def live_runs() -> list[Run]:
    """The runs of this process that are not finished."""
    return [run for run in list(_runs) if not run.finished]


def _after_fork_in_child() -> None:
    for run in list(_runs):
        run._disown()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _forget_current(run: Run) -> None:
    import nbtrack

    if nbtrack.run is run:
        nbtrack.run = None

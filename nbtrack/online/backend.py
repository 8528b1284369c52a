"""The sender's backend for online mode: one run delivered to a tracking server over HTTP.

The sender hands rows over and goes on: every call here only queues. A delivery thread posts the
file stream (at most one post in flight, bounded in rows and bytes, at least every
FLUSH_SECONDS while rows arrive), upserts the run when its config or metrics change, uploads
files, and retries transient failures with the client's RetryPolicy. While the server is
unreachable the rows wait here, and durably in the transaction log the writer already made, so
the user's loop never slows down. History and console lines carry their line offset: a post
retried after the server had applied it replaces the same lines, never duplicates them.

The calls that address the run on the server (UpsertBucket, CreateRunFiles and the upload, one
file-stream post) are server_run.py's. What a request carries is made to fit the server's body
limit there (the config of an upsert) and in stream_sender.py (each file-stream post).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from nbtrack import jsonutil
from nbtrack.online.client import ServerClient
from nbtrack.online.line_queue import LineQueue
from nbtrack.online.oversize import BodyLimit, LimitNotices
from nbtrack.online.retry import Rejected, RetryPolicy, TooLarge, Transient
from nbtrack.online.server_run import ServerRun, wrapped
from nbtrack.online.stream_post import StreamPost
from nbtrack.online.stream_sender import StreamSender
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.vocabulary import RUN_ALIVE_SECONDS
from nbtrack.worker import EMPTY, END, Worker, _Marker

__all__ = ["HttpBackend"]

logger = logging.getLogger("nbtrack")

FLUSH_SECONDS = 0.5  # a live run's rows reach the server at most this late (when it answers)
MAX_POST_ROWS = 10_000  # lines of each kind in one post (their bytes: StreamSender.post_bytes)
START_RETRY_SECONDS = 5.0  # init() waits this long for an unreachable server, then goes on without it


@dataclass
class _Post:
    """One unit of work for the delivery thread, taken from the queues under the lock."""

    upsert: dict[str, Any] | None = None
    files: list[tuple[str, Path]] = field(default_factory=list)
    alerts: list[pb.AlertRecord] = field(default_factory=list)
    stream: StreamPost = field(default_factory=StreamPost)
    final_upsert: dict[str, Any] | None = None  # after the last post (a crashed run says so)
    heartbeat: bool = False  # post even if empty: the run is alive (store/liveness.py)


class HttpBackend:
    """Implements the sender's Backend for a tracking server (see nbtrack.internal.backend)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        run: pb.RunRecord,
        notice: Callable[[str], None],
        log_path: Path | None = None,
        policy: RetryPolicy | None = None,
        alive_interval: float = RUN_ALIVE_SECONDS,
    ) -> None:
        """log_path: the run's transaction log, where history waits once too much is in memory.
        alive_interval: a live run posts at least this often (an empty post when idle)."""
        self._client = ServerClient(base_url, api_key, policy=policy)
        self._notice = notice
        limit = BodyLimit()  # learnt from the server's first 413
        notices = LimitNotices(self._client.base_url, limit, notice)
        self._run = ServerRun(self._client, run, limit, notices)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = threading.Event()  # the final post is delivered (or given up)
        self._run_known = threading.Event()  # an upsert of the run succeeded: the server has it
        self._config: dict[str, Any] = {}
        self._upsert: dict[str, Any] | None = None
        self._history = LineQueue(log_path)
        self._output = LineQueue()
        self._events = LineQueue()
        self._summary: dict[str, Any] | None = None
        self._files: list[tuple[str, Path]] = []
        self._alerts: list[pb.AlertRecord] = []
        self._uploaded: list[str] = []
        self._complete: int | None = None
        self._final_upsert: dict[str, Any] | None = None
        self._in_flight_rows = 0
        self._in_flight_bytes = 0
        self._last_post = time.monotonic()
        self._alive_interval = alive_interval
        self._heartbeat = False  # an empty post is due: the run is live and nothing was posted
        self._closing = False
        self._ended = False  # the post that ends the run is delivered: the FileStream thread ends
        self._stream = StreamSender(self._run, limit, notices, self._stop, self._attempt, self._refused)
        self.rows_delivered = 0
        self.history_lines_stored = 0  # as the last UpsertBucket answered (0 until one did)
        self.retrying = False
        self.failure: str | None = None  # the first thing the server refused, said once
        self._thread = _FileStream(self)

    # -- the Backend calls (sender thread) ----------------------------------------------------

    def upsert_run(self, run: pb.RunRecord, config: dict[str, Any]) -> tuple[str, str | None]:
        """Create the run on the server: (entity, url). An unreachable server does not stop init():
        the upsert is queued and retried; a refusal (bad key, bad name) raises Rejected."""
        self._config = dict(config)
        fields: dict[str, Any] = {
            "name": run.run_id,
            "project": run.project,
            "entity": run.entity or None,
            "displayName": run.display_name or None,
            "notes": run.notes or None,
            "groupName": run.group or None,
            "jobType": run.job_type or None,
            "tags": list(run.tags),
            "config": self._config_json(),
            "host": run.host or None,
            "program": run.program or None,
            "state": "running",
            "createdAt": None if run.resumed else run.start_time or None,
        }
        deadline = time.monotonic() + START_RETRY_SECONDS
        try:
            self._client.retrying(partial(self._upsert_now, fields), stop=self._stop, deadline=deadline)
        except Transient as exc:
            self._queue_upsert(fields)
            self._on_transient(exc)
        return self._run.entity, self._run.url

    def write_history(self, offset: int, lines: list[str], steps: list[int]) -> None:
        self._history.add(offset, lines)
        if len(self._history) >= MAX_POST_ROWS:
            with self._cond:
                self._cond.notify()

    def write_output(self, offset: int, lines: list[str]) -> None:
        self._output.add(offset, lines)

    def write_events(self, offset: int, lines: list[str]) -> None:
        self._events.add(offset, lines)

    def write_summary(self, summary: dict[str, Any]) -> None:
        with self._cond:
            self._summary = summary

    def update_config(self, update: dict[str, Any], remove: list[str]) -> None:
        self._config.update(update)
        for key in remove:
            self._config.pop(key, None)
        self._queue_upsert({"config": self._config_json()})

    def set_metrics(self, metrics: list[dict[str, str]]) -> None:
        self._queue_upsert({"metrics": jsonutil.dumps_str(metrics)})

    def save_file(self, name: str, path: Path) -> None:
        with self._cond:
            self._files.append((name, path))
            self._cond.notify()

    def add_alert(self, alert: pb.AlertRecord) -> None:
        with self._cond:
            self._alerts.append(alert)
            self._cond.notify()

    def log_artifact(self, artifact: pb.ArtifactRecord, staged: Path) -> str:
        """Log the version on the server (artifact_records.py), on the sender's thread: the
        FileStream thread goes on posting rows meanwhile. Transient while the server is away (the
        sender retries), Rejected if it refuses; abort() ends it between requests and upload chunks
        (Transient), the transaction log keeping the record for `nbtrack sync`."""
        from nbtrack.online.artifact_records import send_artifact

        self._wait_for_run()
        run = (self._run.entity, self._run.project, self._run.run_id)
        return send_artifact(self._client, run, artifact, staged, stop=self._stop).version

    def use_artifact(self, use: pb.UseArtifactRecord) -> None:
        from nbtrack.online.artifact_records import send_artifact_use

        self._wait_for_run()
        run = (self._run.entity, self._run.project, self._run.run_id)
        send_artifact_use(self._client, run, use, stop=self._stop)

    def _wait_for_run(self) -> None:
        """Until the server has the run (its upsert may still be queued while the server was away):
        an artifact names the run that logged or used it. Transient once abort() gives up, Rejected
        if the server refused something of the run meanwhile."""
        while not self._run_known.wait(0.2):
            if self._stop.is_set():
                raise Transient(f"the run is not on {self._client.base_url} yet; delivery was given up")
            if self.failure is not None:  # the server refused the run itself: never worth waiting
                raise Rejected(f"the run is not on {self._client.base_url}: {self.failure}")

    def keep_alive(self) -> None:
        """Post `{}` when nothing was posted for alive_interval (what wandb-core does as well)."""
        with self._cond:
            if not self._heartbeat and time.monotonic() - self._last_post >= self._alive_interval:
                self._heartbeat = True
                self._cond.notify()

    def finish_run(self, state: str, exit_code: int | None, runtime: float | None) -> None:
        """Queue the last post and wait until it is delivered (or abort() gives up)."""
        with self._cond:
            self._complete = exit_code if exit_code is not None else (0 if state == "finished" else 1)
            if state == "crashed":  # the file stream knows only finished/failed
                self._final_upsert = {"state": "crashed"}
            self._cond.notify()
        while not self._done.wait(0.2):
            if self._stop.is_set() or not self._thread.is_alive():
                break

    def pending(self) -> tuple[int, int]:
        """(history rows, bytes) handed over but not yet acknowledged by the server."""
        with self._cond:
            return len(self._history) + self._in_flight_rows, self._history.nbytes + self._in_flight_bytes

    def abort(self) -> None:
        """Stop delivering now (the user gave up waiting); the transaction log keeps the rest."""
        self._stop.set()
        with self._cond:
            self._cond.notify()

    def close(self) -> None:
        """Deliver what is queued (bounded by the caller's patience: see abort), then stop."""
        self._close_queue()
        while not self._stop.is_set() and not self._thread.join(0.2):
            pass
        self._client.close()

    def _close_queue(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()

    # -- the delivery thread ------------------------------------------------------------------

    def _next_post(self, timeout: float) -> _Post | _Marker:
        """Take the next post once it is due, waiting up to timeout for that (EMPTY: not yet); END
        after abort(), once closing leaves nothing to post, or after the run's last post."""
        with self._cond:
            waited = False
            while True:
                if self._stop.is_set() or self._ended:
                    return END
                has_work = bool(
                    self._heartbeat
                    or self._upsert
                    or self._files
                    or self._alerts
                    or len(self._history)
                    or len(self._output)
                    or len(self._events)
                    or self._summary is not None
                )
                due = (
                    self._heartbeat
                    or self._upsert is not None
                    or self._files
                    or self._alerts
                    or len(self._history) >= MAX_POST_ROWS
                    or self._complete is not None
                    or self._closing
                    or time.monotonic() - self._last_post >= FLUSH_SECONDS
                )
                if due and (has_work or self._complete is not None):
                    break
                if self._closing and not has_work:
                    return END
                if waited:
                    return EMPTY
                self._cond.wait(timeout)
                waited = True
            post = _Post(
                upsert=self._upsert, files=self._files, alerts=self._alerts, heartbeat=self._heartbeat
            )
            stream = post.stream
            self._upsert, self._files, self._alerts, self._heartbeat = None, [], [], False
            stream.output = self._output.take(MAX_POST_ROWS, self._stream.post_bytes())
            stream.events = self._events.take(MAX_POST_ROWS, self._stream.post_bytes())
            summary, self._summary = self._summary, None
            self._last_post = time.monotonic()
        # Outside the lock: lines may have to be read back from the log, and the sender goes on.
        stream.history = self._history.take(MAX_POST_ROWS, self._stream.post_bytes())
        if summary is not None:
            stream.summary = self._stream.summary_text(summary)
        with self._cond:
            self._in_flight_rows = stream.rows
            self._in_flight_bytes = sum(map(len, stream.history[1]))
            # After the exit record the sender adds nothing, so "all taken" stays true.
            left = len(self._history) + len(self._output) + len(self._events)
            if self._complete is not None and not left:
                stream.complete, post.final_upsert = self._complete, self._final_upsert
        return post

    def _deliver_next(self, post: _Post) -> None:
        """Deliver one post (on the FileStream thread)."""
        self._deliver(post)
        if post.stream.complete is not None:
            self._ended = True
        elif not post.stream.rows and len(self._history):
            # Lines the writer has not handed to the OS yet (it does every 20 ms): not a reason
            # to scan the log again at once.
            self._stop.wait(0.05)

    def _delivery_failed(self, thread: str, exc: BaseException) -> None:
        """The FileStream thread failed (a bug; the Worker logged it): the log keeps everything,
        say where; finish_run() waits no more."""
        self._refused(f"delivery to {self._client.base_url} stopped after an internal error")
        self._done.set()

    def _deliver(self, post: _Post) -> None:
        if post.upsert is not None:
            self._attempt(partial(self._upsert_now, post.upsert), "updating the run")
        for name, path in post.files:
            if self._attempt(partial(self._run.upload, name, path), f"uploading {name}"):
                self._uploaded.append(name)
        for alert in post.alerts:
            self._attempt(partial(self._run.alert, alert), f"sending the alert {alert.title[:60]!r}")
        stream = post.stream
        stream.uploaded, self._uploaded = self._uploaded, []
        if stream.is_empty() and post.heartbeat:
            # Nothing to post but the run is alive: an empty post says so (store/liveness.py).
            self._attempt(
                partial(self._run.post_stream, stream.encode()), "telling the server the run is alive"
            )
        elif not stream.is_empty():
            stored = self._stream.send(stream)
            with self._cond:
                self.rows_delivered += stored
                # A post cut short by abort() leaves its other rows pending: the log has them.
                self._in_flight_rows = stream.rows - stored if self._stop.is_set() else 0
                if not self._in_flight_rows:
                    self._in_flight_bytes = 0
        if post.final_upsert is not None:
            self._attempt(partial(self._upsert_now, post.final_upsert), "marking the run crashed")

    def _attempt(self, call: Callable[[], object], what: str, *, too_large: bool = False) -> bool:
        """call() with retries until it succeeds (True), is refused or aborted (False).
        too_large: raise TooLarge instead (the caller can make its request smaller)."""
        try:
            self._client.retrying(
                call, stop=self._stop, on_retry=lambda exc, n, wait: self._on_transient(exc)
            )
        except Transient:
            return False  # aborted while retrying: the transaction log keeps it for `nbtrack sync`
        except Rejected as exc:
            if too_large and isinstance(exc, TooLarge):
                raise
            self._refused(f"{what}: {exc}")
            return False
        if self.retrying:
            self.retrying = False
            self._notice(f"the tracking server at {self._client.base_url} answers again; delivery resumed")
        return True

    def _upsert_now(self, fields: dict[str, Any]) -> None:
        """Upsert the run now (one attempt), and learn how many history lines the server holds."""
        lines = self._run.upsert(fields)
        if lines is not None:
            self.history_lines_stored = lines
        self._run_known.set()

    def _queue_upsert(self, fields: dict[str, Any]) -> None:
        with self._cond:
            self._upsert = {**(self._upsert or {}), **fields}
            self._cond.notify()

    def _config_json(self) -> str:
        return wrapped(self._config)

    def _on_transient(self, exc: Transient) -> None:
        if not self.retrying:
            self.retrying = True
            self._notice(f"{exc}; retrying — logging goes on, every row is kept in the transaction log")

    def _refused(self, message: str) -> None:
        logger.error("nbtrack: %s", message)
        if self.failure is None:
            self.failure = message
            self._notice(message + " (the transaction log keeps every row; replay it with `nbtrack sync`)")


class _Posts:
    """The FileStream thread's source: the backend's queues, one post at a time (`_next_post`)."""

    def __init__(self, backend: HttpBackend) -> None:
        self._backend = backend

    def get(self, timeout: float) -> _Post | _Marker:
        return self._backend._next_post(timeout)

    def close(self) -> None:
        self._backend._close_queue()

    def fail(self, reason: str) -> None:
        """The sender's calls only queue: nobody waits for the FileStream thread to take a post."""

    def __len__(self) -> int:
        return 0


class _FileStream(Worker[_Post]):
    """The "FileStream" thread: delivers each post of the backend as it falls due."""

    idle_seconds = FLUSH_SECONDS  # the longest wait for a post before looking at the clock again

    def __init__(self, backend: HttpBackend) -> None:
        self._backend = backend
        super().__init__("FileStream", _Posts(backend), backend._delivery_failed)

    def handle(self, item: _Post) -> None:
        self._backend._deliver_next(item)

    def finished(self) -> None:
        self._backend._done.set()  # the final post is delivered, or delivery was given up

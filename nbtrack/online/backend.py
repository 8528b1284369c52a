"""The sender's backend for online mode: one run delivered to a tracking server over HTTP.

The sender hands rows over and goes on: every call here only queues. A delivery thread posts the
file stream (at most one post in flight, bounded in rows and bytes, at least every
FLUSH_SECONDS while rows arrive), upserts the run when its config or metrics change, uploads
files, and retries transient failures with the client's RetryPolicy. While the server is
unreachable the rows wait here, and durably in the transaction log the writer already made, so
the user's loop never slows down. History and console lines carry their line offset: a post
retried after the server had applied it replaces the same lines, never duplicates them.

A post the server refuses as too large (413) is split until its parts fit; a line that alone
does not fit is stored without its oversized values (oversize.py), with a notice naming them,
and the same goes for the summary and the config. Once a refusal has told the limit, every
request is sized under it before it is sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from nbtrack import jsonutil
from nbtrack.online.client import ServerClient, graphql_body
from nbtrack.online.line_queue import LineQueue
from nbtrack.online.oversize import DROPPED_TYPE, BodyLimit, Dropped, fit_object, fit_text, posted_size
from nbtrack.online.retry import Rejected, RetryPolicy, TooLarge, Transient
from nbtrack.online.stream_post import StreamPost
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.vocabulary import RESERVED_KEYS
from nbtrack.worker import EMPTY, END, Worker, _Marker

__all__ = ["HttpBackend", "run_url"]

logger = logging.getLogger("nbtrack")

FLUSH_SECONDS = 0.5  # a live run's rows reach the server at most this late (when it answers)
MAX_POST_ROWS = 10_000
MAX_POST_BYTES = 8 << 20  # well under the server's request limit
MAX_LINE_NOTICES = 20  # lines cut to fit the server, each said; past this, one notice says the rest are not
START_RETRY_SECONDS = 5.0  # init() waits this long for an unreachable server, then goes on without it

UPSERT_BUCKET = """
mutation UpsertBucket($name: String, $project: String, $entity: String, $displayName: String,
    $notes: String, $groupName: String, $jobType: String, $tags: [String!], $config: JSONString,
    $summaryMetrics: JSONString, $host: String, $program: String, $state: String,
    $metrics: JSONString, $createdAt: Float) {
  upsertBucket(input: {name: $name, project: $project, entity: $entity, displayName: $displayName,
      notes: $notes, groupName: $groupName, jobType: $jobType, tags: $tags, config: $config,
      summaryMetrics: $summaryMetrics, host: $host, program: $program, state: $state,
      metrics: $metrics, createdAt: $createdAt}) {
    bucket { id name displayName historyLineCount project { id name entity { id name } } }
    inserted
  }
}
"""

CREATE_RUN_FILES = """
mutation CreateRunFiles($entity: String, $project: String!, $run: String!, $files: [String!]!) {
  createRunFiles(input: {entityName: $entity, project: $project, run: $run, files: $files}) {
    runID uploadHeaders files { name uploadUrl }
  }
}
"""


def run_url(base_url: str, entity: str, project: str, run_id: str) -> str:
    """The run's page in the server's web UI."""
    return f"{base_url}/{entity}/{project}/runs/{run_id}"


@dataclass
class _Post:
    """One unit of work for the delivery thread, taken from the queues under the lock."""

    upsert: dict[str, Any] | None = None
    files: list[tuple[str, Path]] = field(default_factory=list)
    stream: StreamPost = field(default_factory=StreamPost)
    final_upsert: dict[str, Any] | None = None  # after the last post (a crashed run says so)


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
    ) -> None:
        """log_path: the run's transaction log, where history waits once too much is in memory."""
        self._client = ServerClient(base_url, api_key, policy=policy)
        self._notice = notice
        self._entity = run.entity  # "" until the server says whose key this is
        self._project, self._run_id = run.project, run.run_id
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = threading.Event()  # the final post is delivered (or given up)
        self._config: dict[str, Any] = {}
        self._upsert: dict[str, Any] | None = None
        self._history = LineQueue(log_path)
        self._output = LineQueue()
        self._events = LineQueue()
        self._summary: dict[str, Any] | None = None
        self._files: list[tuple[str, Path]] = []
        self._uploaded: list[str] = []
        self._complete: int | None = None
        self._final_upsert: dict[str, Any] | None = None
        self._in_flight_rows = 0
        self._in_flight_bytes = 0
        self._last_post = time.monotonic()
        self._closing = False
        self._ended = False  # the post that ends the run is delivered: the FileStream thread ends
        self._limit = BodyLimit()  # learnt from the server's first 413
        self._said: set[str] = set()  # "summary:key", "config:key": a dropped value is said once
        # The summary comes whole every second: a value already found too large is swapped for
        # its marker before encoding (while it is unchanged), not encoded and fitted every time.
        self._summary_marks: dict[str, tuple[Any, Any]] = {}  # key -> (the value, its marker)
        self._summary_sent: dict[str, Any] = {}  # the summary of the post being delivered
        self._line_notices = 0
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
            self._client.retrying(lambda: self._upsert_now(fields), stop=self._stop, deadline=deadline)
        except Transient as exc:
            self._queue_upsert(fields)
            self._on_transient(exc)
        return self._entity, self.url

    @property
    def url(self) -> str | None:
        if not self._entity:
            return None
        return run_url(self._client.base_url, self._entity, self._project, self._run_id)

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
                    self._upsert
                    or self._files
                    or len(self._history)
                    or len(self._output)
                    or len(self._events)
                    or self._summary is not None
                )
                due = (
                    self._upsert is not None
                    or self._files
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
            post = _Post(upsert=self._upsert, files=self._files)
            stream = post.stream
            self._upsert, self._files = None, []
            stream.output = self._output.take(MAX_POST_ROWS, self._post_bytes())
            stream.events = self._events.take(MAX_POST_ROWS, self._post_bytes())
            summary, self._summary = self._summary, None
            self._last_post = time.monotonic()
        # Outside the lock: lines may have to be read back from the log, and the sender goes on.
        stream.history = self._history.take(MAX_POST_ROWS, self._post_bytes())
        if summary is not None:
            stream.summary = self._summary_text(summary)
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

    def _summary_text(self, summary: dict[str, Any]) -> str:
        self._summary_sent = summary
        self._summary_marks = {
            key: (value, mark)
            for key, (value, mark) in self._summary_marks.items()
            if key in summary and summary[key] == value
        }
        if self._summary_marks:
            summary = {**summary, **{key: mark for key, (_, mark) in self._summary_marks.items()}}
        return jsonutil.dumps_str(summary)

    def _post_bytes(self) -> int:
        """Bytes of lines to take for one post: half the server's limit once it is known (escaping
        makes a line longer in the body than in memory), so a post rarely has to be split."""
        limit = self._limit.bytes
        return MAX_POST_BYTES if limit is None else max(1, min(MAX_POST_BYTES, limit // 2))

    def _deliver(self, post: _Post) -> None:
        if post.upsert is not None:
            self._attempt(lambda: self._upsert_now(post.upsert or {}), "updating the run")
        for name, path in post.files:
            if self._attempt(lambda n=name, p=path: self._upload(n, p), f"uploading {name}"):  # type: ignore[misc]
                self._uploaded.append(name)
        stream = post.stream
        stream.uploaded, self._uploaded = self._uploaded, []
        if not stream.is_empty():
            stored = self._send_stream(stream)
            with self._cond:
                self.rows_delivered += stored
                # A post cut short by abort() leaves its other rows pending: the log has them.
                self._in_flight_rows = stream.rows - stored if self._stop.is_set() else 0
                if not self._in_flight_rows:
                    self._in_flight_bytes = 0
        if post.final_upsert is not None:
            self._attempt(lambda: self._upsert_now(post.final_upsert or {}), "marking the run crashed")

    def _send_stream(self, post: StreamPost) -> int:
        """Deliver a file-stream post, split and fitted under the server's body limit; the number
        of history rows the server took. The parts go in order, the run's end in the last."""
        stored = 0
        parts = [post]
        while parts and not self._stop.is_set():
            part = parts.pop(0)
            body = part.encode()
            limit = self._limit.bytes
            if limit is not None and len(body) > limit:
                halves = part.split()
                if halves is not None:
                    parts[:0] = halves
                    continue
                fitted = self._fit_alone(part, len(body) - limit)
                if fitted is None:
                    self._refused(
                        f"{part.describe()}: it cannot be made to fit the tracking server's limit "
                        f"({self._limit.describe()})"
                    )
                    rest = StreamPost(uploaded=part.uploaded, complete=part.complete)
                    if part.lines() or part.summary is not None:  # the run's end still goes
                        parts.insert(0, rest)
                    continue
                part, body = fitted, fitted.encode()
            try:
                delivered = self._attempt(partial(self._post_stream, body), part.describe(), too_large=True)
            except TooLarge as exc:
                self._limit.learn(exc.sent or len(body), exc.limit)
                parts.insert(0, part)  # again: split or fitted under what the server just said
                continue
            if delivered:
                stored += part.rows
        return stored

    def _fit_alone(self, part: StreamPost, excess: int) -> StreamPost | None:
        """The post (one line, or the summary) `excess` bytes smaller, by its largest values, with a
        notice naming them; None if it cannot get that small."""
        reason = f"too large for the tracking server ({self._limit.describe()})"
        (offset, rows), (out_offset, out), (events_offset, events) = part.history, part.output, part.events
        if rows:
            fitted = fit_object(rows[0], posted_size(rows[0]) - excess, reason, keep=RESERVED_KEYS)
            if fitted is None:
                return None
            step = jsonutil.loads(fitted[0]).get("_step")
            self._say_line(f"history line {offset} (step {step})", fitted[1], "the row is stored without")
            return replace(part, history=(offset, [fitted[0]]))
        if events:
            fitted = fit_object(events[0], posted_size(events[0]) - excess, reason, keep=RESERVED_KEYS)
            if fitted is None:
                return None
            self._say_line(f"system metrics line {events_offset}", fitted[1], "the line is stored without")
            return replace(part, events=(events_offset, [fitted[0]]))
        if out:
            cut = fit_text(out[0], posted_size(out[0]) - excess, reason)
            if cut is None:
                return None
            self._say_line(f"console line {out_offset}", [], f"the line ({len(out[0])} characters) is cut")
            return replace(part, output=(out_offset, [cut]))
        if part.summary is not None:
            fitted = fit_object(part.summary, posted_size(part.summary) - excess, reason)
            if fitted is None:
                return None
            self._say_dropped("summary", fitted[1])
            marks = jsonutil.loads(fitted[0])  # small now
            for item in fitted[1]:
                if item.key in marks and item.key in self._summary_sent:
                    self._summary_marks[item.key] = (self._summary_sent[item.key], marks[item.key])
            return replace(part, summary=fitted[0])
        return None

    def _post_stream(self, body: bytes) -> object:
        return self._client.file_stream(self._entity, self._project, self._run_id, body)

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

    # -- server calls -------------------------------------------------------------------------

    def _upsert_now(self, fields: dict[str, Any]) -> None:
        variables = {"name": self._run_id, "project": self._project, "entity": self._entity or None, **fields}
        while True:
            if self._limit.bytes is not None:
                variables = self._fit_upsert(variables, self._limit.bytes)
            try:
                data = self._client.graphql(UPSERT_BUCKET, variables)
                break
            except TooLarge as exc:
                if not variables.get("config"):
                    raise  # only the config can be made smaller
                self._limit.learn(exc.sent, exc.limit)
        bucket = (data.get("upsertBucket") or {}).get("bucket") or {}
        entity = ((bucket.get("project") or {}).get("entity") or {}).get("name")
        if isinstance(entity, str) and entity:
            self._entity = entity
        lines = bucket.get("historyLineCount")
        if isinstance(lines, int):
            self.history_lines_stored = lines

    def _fit_upsert(self, variables: dict[str, Any], limit: int) -> dict[str, Any]:
        """The upsert's variables with the config's largest values marked until the request fits."""
        size = len(graphql_body(UPSERT_BUCKET, variables))
        config = variables.get("config")
        if size <= limit:
            return variables
        fitted = None
        if isinstance(config, str):
            # Fitted unwrapped, so a marker stands for the value ({"key": {"value": marker}}) and
            # names its size; the wrapping costs the same few bytes a key before and after.
            plain = jsonutil.dumps_str({key: item["value"] for key, item in jsonutil.loads(config).items()})
            wrapping = posted_size(config) - posted_size(plain)
            reason = f"too large for the tracking server ({self._limit.describe()})"
            fitted = fit_object(plain, posted_size(config) + limit - size - wrapping, reason)
        if fitted is None:
            raise Rejected(
                f"updating the run takes {size} bytes, more than the tracking server takes "
                f"({self._limit.describe()})",
                413,
            )
        self._say_dropped("config", fitted[1])
        return {**variables, "config": _wrapped(jsonutil.loads(fitted[0]))}

    def _upload(self, name: str, path: Path) -> None:
        data = self._client.graphql(
            CREATE_RUN_FILES,
            {"entity": self._entity or None, "project": self._project, "run": self._run_id, "files": [name]},
        )
        created = data.get("createRunFiles") or {}
        headers = dict(h.split(":", 1) for h in created.get("uploadHeaders") or [] if ":" in h)
        for item in created.get("files") or []:
            if item.get("name") == name and item.get("uploadUrl"):
                self._client.upload(
                    item["uploadUrl"], path, {k.strip(): v.strip() for k, v in headers.items()}
                )
                return
        raise Rejected(f"the tracking server gave no upload URL for {name}")

    def _queue_upsert(self, fields: dict[str, Any]) -> None:
        with self._cond:
            self._upsert = {**(self._upsert or {}), **fields}
            self._cond.notify()

    def _config_json(self) -> str:
        return _wrapped(self._config)

    def _on_transient(self, exc: Transient) -> None:
        if not self.retrying:
            self.retrying = True
            self._notice(f"{exc}; retrying — logging goes on, every row is kept in the transaction log")

    def _say_line(self, line: str, dropped: list[Dropped], what: str) -> None:
        """Tell the user a line lost values to the server's limit (each line, up to a point)."""
        self._line_notices += 1
        if self._line_notices > MAX_LINE_NOTICES:
            return
        if dropped:
            what = f'{what} {_names(dropped)}, marked {{"_type": "{DROPPED_TYPE}"}} in its place'
        message = (
            f"{line}: too large for the tracking server at {self._client.base_url} "
            f"({self._limit.describe()}); {what} (the transaction log keeps it whole)"
        )
        if self._line_notices == MAX_LINE_NOTICES:
            message += "; further lines too large for the server are stored the same way, without a notice"
        self._notice(message)

    def _say_dropped(self, where: str, dropped: list[Dropped]) -> None:
        """Tell the user, once per key, that the server's summary or config holds a marker for it."""
        new = [item for item in dropped if f"{where}:{item.key}" not in self._said]
        if not new:
            return
        self._said.update(f"{where}:{item.key}" for item in new)
        self._notice(
            f"{where} {_names(new)}: too large for the tracking server at {self._client.base_url} "
            f"({self._limit.describe()}); the server's {where} holds "
            f'{{"_type": "{DROPPED_TYPE}"}} instead (the transaction log keeps the value)'
        )

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


def _wrapped(config: dict[str, Any]) -> str:
    """The config as W&B sends it: {"key": {"value": v}}."""
    return jsonutil.dumps_str({key: {"value": value} for key, value in config.items()})


def _names(dropped: list[Dropped], most: int = 5) -> str:
    """'a' (N bytes), 'b' (M bytes) and 3 more."""
    named = ", ".join(f"{item.key!r} ({item.nbytes} bytes)" for item in dropped[:most])
    return named + (f" and {len(dropped) - most} more" if len(dropped) > most else "")

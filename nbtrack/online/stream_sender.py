"""File-stream posts delivered under the tracking server's body limit.

A post the server refuses as too large (413) is split until its parts fit (stream_post.py); a
line that alone does not fit is stored without its oversized values (oversize.py), with a notice
naming them, and so is the summary. Once a refusal has told the limit, every post is sized under
it before it is sent, and lines are taken for a post up to half of it (`post_bytes`), so one
rarely has to be split. The summary comes whole every second: a value already found too large is
sent as its marker while it is unchanged, not encoded and fitted every time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any, Protocol

from nbtrack import jsonutil
from nbtrack.online.oversize import BodyLimit, LimitNotices, fit_object, fit_text, posted_size
from nbtrack.online.retry import TooLarge
from nbtrack.online.server_run import ServerRun
from nbtrack.online.stream_post import StreamPost
from nbtrack.vocabulary import RESERVED_KEYS

__all__ = ["MAX_POST_BYTES", "Attempt", "StreamSender"]

MAX_POST_BYTES = 8 << 20  # well under the server's request limit


class Attempt(Protocol):
    def __call__(self, call: Callable[[], object], what: str, *, too_large: bool = False) -> bool:
        """call() with retries until it succeeds (True), is refused or aborted (False).
        too_large: raise TooLarge instead (the caller can make its request smaller)."""


class StreamSender:
    """Sends the file-stream posts of `run`, each through attempt() (retried, refusals said), and
    stops between parts once stop is set. refused: say a part that cannot be sent at all."""

    def __init__(
        self,
        run: ServerRun,
        limit: BodyLimit,
        notices: LimitNotices,
        stop: threading.Event,
        attempt: Attempt,
        refused: Callable[[str], None],
    ) -> None:
        self._run = run
        self._limit = limit  # learnt from the server's first 413
        self._notices = notices
        self._stop = stop
        self._attempt = attempt
        self._refused = refused
        self._summary_marks: dict[str, tuple[Any, Any]] = {}  # key -> (the value, its marker)
        self._summary_sent: dict[str, Any] = {}  # the summary of the post being delivered

    def post_bytes(self) -> int:
        """Bytes of lines to take for one post: half the server's limit once it is known (escaping
        makes a line longer in the body than in memory), so a post rarely has to be split."""
        limit = self._limit.bytes
        return MAX_POST_BYTES if limit is None else max(1, min(MAX_POST_BYTES, limit // 2))

    def summary_text(self, summary: dict[str, Any]) -> str:
        """The summary for the next post, with the markers of values found too large before."""
        self._summary_sent = summary
        self._summary_marks = {
            key: (value, mark)
            for key, (value, mark) in self._summary_marks.items()
            if key in summary and summary[key] == value
        }
        if self._summary_marks:
            summary = {**summary, **{key: mark for key, (_, mark) in self._summary_marks.items()}}
        return jsonutil.dumps_str(summary)

    def send(self, post: StreamPost) -> int:
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
                delivered = self._attempt(
                    partial(self._run.post_stream, body), part.describe(), too_large=True
                )
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
            self._notices.line(f"history line {offset} (step {step})", fitted[1], "the row is stored without")
            return replace(part, history=(offset, [fitted[0]]))
        if events:
            fitted = fit_object(events[0], posted_size(events[0]) - excess, reason, keep=RESERVED_KEYS)
            if fitted is None:
                return None
            self._notices.line(
                f"system metrics line {events_offset}", fitted[1], "the line is stored without"
            )
            return replace(part, events=(events_offset, [fitted[0]]))
        if out:
            cut = fit_text(out[0], posted_size(out[0]) - excess, reason)
            if cut is None:
                return None
            self._notices.line(
                f"console line {out_offset}", [], f"the line ({len(out[0])} characters) is cut"
            )
            return replace(part, output=(out_offset, [cut]))
        if part.summary is not None:
            fitted = fit_object(part.summary, posted_size(part.summary) - excess, reason)
            if fitted is None:
                return None
            self._notices.dropped("summary", fitted[1])
            marks = jsonutil.loads(fitted[0])  # small now
            for item in fitted[1]:
                if item.key in marks and item.key in self._summary_sent:
                    self._summary_marks[item.key] = (self._summary_sent[item.key], marks[item.key])
            return replace(part, summary=fitted[0])
        return None

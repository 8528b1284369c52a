"""One file-stream post of a run, and how it splits in two when the server finds it too large.

    {"files": {"wandb-history.jsonl": {"offset": N, "content": ["<row>", ...]},
               "output.log": {...}, "wandb-events.jsonl": {...},
               "wandb-summary.json": {"offset": 0, "content": ["<summary>"]}},
     "uploaded": [...], "complete": true, "exitcode": 0}

Lines are addressed by offset, so the halves of a split post store exactly what the whole would
have, at the same line numbers. The run's end (`complete`) and the list of uploaded files always
travel in the last part, after every line before them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from nbtrack.vocabulary import EVENTS_FILE, HISTORY_FILE, OUTPUT_FILE, SUMMARY_FILE

__all__ = ["EVENTS", "HISTORY", "OUTPUT", "SUMMARY", "Lines", "StreamPost"]

HISTORY, OUTPUT, EVENTS, SUMMARY = HISTORY_FILE, OUTPUT_FILE, EVENTS_FILE, SUMMARY_FILE
Lines = tuple[int, list[str]]  # (offset of the first line, the lines)


@dataclass
class StreamPost:
    history: Lines = (0, [])
    output: Lines = (0, [])
    events: Lines = (0, [])
    summary: str | None = None  # the whole summary, as JSON
    uploaded: list[str] = field(default_factory=list)  # run files uploaded since the last post
    complete: int | None = None  # the exit code, on the run's last post

    @property
    def rows(self) -> int:
        return len(self.history[1])

    def is_empty(self) -> bool:
        return not (self.lines() or self.summary is not None or self.uploaded or self.complete is not None)

    def lines(self) -> int:
        return len(self.history[1]) + len(self.output[1]) + len(self.events[1])

    def encode(self) -> bytes:
        files: dict[str, Any] = {}
        for name, (offset, lines) in ((HISTORY, self.history), (OUTPUT, self.output), (EVENTS, self.events)):
            if lines:
                files[name] = {"offset": offset, "content": lines}
        if self.summary is not None:
            files[SUMMARY] = {"offset": 0, "content": [self.summary]}
        body: dict[str, Any] = {"files": files}
        if self.uploaded:
            body["uploaded"] = self.uploaded
        if self.complete is not None:
            body["complete"], body["exitcode"] = True, self.complete
        return orjson.dumps(body)

    def describe(self) -> str:
        offset, rows = self.history
        return f"sending history lines {offset}..{offset + len(rows) - 1}" if rows else "sending the run"

    def split(self) -> tuple[StreamPost, StreamPost] | None:
        """Two posts that together are this one, in order; None if it holds a single line or part."""
        if self.summary is not None and self.lines():
            # The summary goes apart (last: it is the newest state): it is in every post, so when it
            # is what is too large, the lines must not be halved again and again around it.
            last = StreamPost(summary=self.summary, uploaded=self.uploaded, complete=self.complete)
            return replace(self, summary=None, uploaded=[], complete=None), last
        if self.lines() < 2:
            return None
        take = self.lines() // 2
        heads: list[Lines] = []
        tails: list[Lines] = []
        for offset, lines in (self.history, self.output, self.events):
            head = lines[:take]
            take -= len(head)
            heads.append((offset, head))
            tails.append((offset + len(head), lines[len(head) :]))
        first = StreamPost(history=heads[0], output=heads[1], events=heads[2])
        return first, replace(self, history=tails[0], output=tails[1], events=tails[2])

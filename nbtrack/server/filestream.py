"""The file stream: one post of a run's history, summary, system metrics and console lines.

    POST /files/{entity}/{project}/{run}/file_stream
    {"files": {"wandb-history.jsonl": {"offset": N, "content": ["<json row>", ...]},
               "wandb-summary.json": {"offset": 0, "content": ["<json object>"]},
               "wandb-events.jsonl": {...}, "output.log": {...}},
     "complete": bool, "exitcode": int}

Every part is optional; other keys and file names are ignored (W&B clients send more). A post
is checked whole before anything is written, then written in one transaction: a bad post
changes nothing, and a resent post replaces the lines it sent before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nbtrack.jsonutil import loads
from nbtrack.server.body import MAX_NESTING, json_kind, too_deep
from nbtrack.server.errors import ApiError
from nbtrack.store import LineBatch, Store
from nbtrack.vocabulary import EVENTS_FILE, HISTORY_FILE, OUTPUT_FILE, SUMMARY_FILE, exit_state

__all__ = ["StreamPost", "apply_post", "parse_post"]

HISTORY, SUMMARY, EVENTS, OUTPUT = HISTORY_FILE, SUMMARY_FILE, EVENTS_FILE, OUTPUT_FILE
# Column ranges of the store (PostgreSQL enforces them): a line number and an exit code are 32-bit
# integers, a step 64-bit.
_MAX_LINE = 2**31 - 1
_INT32 = range(-(2**31), 2**31)
_INT64 = range(-(2**63), 2**63)


@dataclass(frozen=True)
class StreamPost:
    history: LineBatch | None = None
    output: LineBatch | None = None
    events: LineBatch | None = None
    summary: dict[str, Any] | None = None
    finish: tuple[str, int] | None = None  # (state, exit code) when the post says the run is complete


def parse_post(body: dict[str, Any]) -> StreamPost:
    """The post, checked whole; ApiError BAD_REQUEST naming the first thing wrong with it."""
    files = body.get("files", {})
    if not isinstance(files, dict):
        raise ApiError("BAD_REQUEST", f"'files' must be an object of file names, not {json_kind(files)}")
    history = output = events = summary = None
    if (part := _part(files, HISTORY)) is not None:
        offset, content = part
        # Parsed once: the store reads the steps and builds the history's rollup from these objects.
        parsed, steps = [], []
        for i, text in enumerate(content):
            parsed.append(row := _object_line(HISTORY, text, offset + i))
            steps.append(_history_step(HISTORY, row, offset + i))
        history = LineBatch(offset, content, steps, parsed)
    if (part := _part(files, OUTPUT)) is not None:
        offset, content = part
        output = LineBatch(offset, [_text_line(OUTPUT, text, offset + i) for i, text in enumerate(content)])
    if (part := _part(files, EVENTS)) is not None:
        offset, content = part
        for i, text in enumerate(content):
            _object_line(EVENTS, text, offset + i)
        events = LineBatch(offset, content)
    if (part := _part(files, SUMMARY)) is not None:
        offset, content = part
        # Each element is the whole summary, so the last one is the summary.
        summaries = [_object_line(SUMMARY, text, offset + i) for i, text in enumerate(content)]
        summary = summaries[-1] if summaries else None
    return StreamPost(history=history, output=output, events=events, summary=summary, finish=_finish(body))


def apply_post(store: Store, entity: str, project: str, run_id: str, post: StreamPost) -> None:
    """Write the post in one transaction; ApiError NOT_FOUND if the run does not exist."""
    found = store.write_stream(
        entity,
        project,
        run_id,
        history_lines=post.history,
        output_lines=post.output,
        event_lines=post.events,
        summary=post.summary,
        finish=post.finish,
    )
    if not found:
        raise ApiError(
            "NOT_FOUND", f"run {entity}/{project}/{run_id} does not exist; create it with upsertBucket first"
        )


def _part(files: dict[str, Any], name: str) -> tuple[int, list[Any]] | None:
    """The file's checked (offset, content), or None if the post has no such file."""
    part = files.get(name)
    if part is None:
        return None
    if not isinstance(part, dict):
        raise ApiError("BAD_REQUEST", f"files[{name!r}] must be an object, not {json_kind(part)}")
    offset, content = part.get("offset"), part.get("content")
    if type(offset) is not int or not 0 <= offset <= _MAX_LINE:
        raise ApiError(
            "BAD_REQUEST",
            f"files[{name!r}].offset must be a line number (an integer >= 0), not {offset!r:.40}",
        )
    if not isinstance(content, list):
        raise ApiError("BAD_REQUEST", f"files[{name!r}].content must be an array of strings")
    if offset + len(content) > _MAX_LINE:
        raise ApiError("BAD_REQUEST", f"files[{name!r}] reaches beyond line {_MAX_LINE}")
    return offset, content


def _history_step(name: str, row: dict[str, Any], line: int) -> int:
    """The _step of a parsed history row."""
    step = row.get("_step")
    if type(step) is not int or step not in _INT64:
        raise ApiError("BAD_REQUEST", f"{name} line {line} has no integer _step (got {step!r:.40})")
    return step


def _object_line(name: str, text: Any, line: int) -> dict[str, Any]:
    if type(text) is not str:
        raise ApiError("BAD_REQUEST", f"{name} line {line} must be a string, not {json_kind(text)}")
    try:
        row = loads(text)
    except (ValueError, RecursionError):
        raise ApiError("BAD_REQUEST", f"{name} line {line} is not valid JSON: {text!r:.80}") from None
    if type(row) is not dict:
        raise ApiError("BAD_REQUEST", f"{name} line {line} must be a JSON object, not {json_kind(row)}")
    # Only a row with a container inside can nest; the text tells cheaply which rows to walk.
    if ("[" in text or text.count("{") > 1) and too_deep(row):
        raise ApiError("BAD_REQUEST", f"{name} line {line} nests deeper than {MAX_NESTING} levels")
    return row


def _text_line(name: str, text: Any, line: int) -> str:
    if type(text) is not str:
        raise ApiError("BAD_REQUEST", f"{name} line {line} must be a string, not {json_kind(text)}")
    # PostgreSQL text cannot hold NUL; a terminal that printed one loses nothing a reader could see.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _finish(body: dict[str, Any]) -> tuple[str, int] | None:
    complete, exitcode = body.get("complete", False), body.get("exitcode")
    if type(complete) is not bool:
        raise ApiError("BAD_REQUEST", f"'complete' must be true or false, not {complete!r:.40}")
    if exitcode is not None and (type(exitcode) is not int or exitcode not in _INT32):
        raise ApiError("BAD_REQUEST", f"'exitcode' must be a 32-bit integer, not {exitcode!r:.40}")
    if not complete:
        return None
    if exitcode is None:
        raise ApiError("BAD_REQUEST", "a post with 'complete': true needs the run's integer 'exitcode'")
    return (exit_state(exitcode), exitcode)

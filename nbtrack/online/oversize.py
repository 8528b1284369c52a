"""Values too large for the tracking server: what the client knows of its body limit, and how a
line is made to fit under it at the cost of its oversized values only.

A server refuses a request body over its limit with 413. nbtrack's server names the limit in
that answer (client.LIMIT_HEADER); a server or proxy that does not is taken to accept at most
half of what it refused, and each further refusal halves that again. A line that alone is over
the limit (a history row, the summary, the config, a system-metrics line) keeps its place and
all its other values: its largest values become a marker, {"_type": "nbtrack-dropped", "reason",
"bytes"}. W&B readers treat a `_type` value as an object, not a number, so charts leave it out
as they leave out a histogram, and a reader still sees that the key had a value at that step.
The user hears of it (`LimitNotices`): each line cut, up to MAX_LINE_NOTICES, and each summary or
config key once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import orjson

from nbtrack import jsonutil
from nbtrack.vocabulary import DROPPED_TYPE

__all__ = ["DROPPED_TYPE", "BodyLimit", "Dropped", "LimitNotices", "fit_object", "fit_text", "posted_size"]

MAX_LINE_NOTICES = 20  # lines cut to fit the server, each said; past this, one notice says the rest are not


class BodyLimit:
    """The largest request body the server takes, as far as the client knows (None: no refusal yet)."""

    def __init__(self) -> None:
        self.bytes: int | None = None
        self.advertised = False  # the server named it (else it is a guess from what it refused)

    def learn(self, sent: int, advertised: int | None) -> None:
        """A body of `sent` bytes was refused; advertised: the limit the server named with it.

        The new limit is always below `sent`, so a caller that keeps its next body under it
        cannot send the same refused body again: refusals make requests strictly smaller.
        """
        if advertised is not None and advertised < sent:
            limit, named = advertised, True
        else:  # not said (or said wrongly: a proxy in front with a smaller limit)
            limit, named = sent // 2, False
        if self.bytes is None or limit < self.bytes:
            self.bytes, self.advertised = limit, named

    def describe(self) -> str:
        if self.bytes is None:
            return "no limit known"
        return f"{self.bytes} bytes a request" + ("" if self.advertised else " or less")


@dataclass(frozen=True)
class Dropped:
    key: str
    nbytes: int  # the value's size as JSON


def posted_size(text: str) -> int:
    """Bytes the text takes inside a JSON request body: a JSON string, quotes and escapes included."""
    return len(orjson.dumps(text))


def marker(nbytes: int, reason: str) -> dict[str, Any]:
    """What a reader finds instead of a value the server could not take."""
    return {"_type": DROPPED_TYPE, "reason": reason, "bytes": nbytes}


def fit_object(
    text: str, budget: int, reason: str, keep: Collection[str] = ()
) -> tuple[str, list[Dropped]] | None:
    """The JSON object `text` with its largest values (never the keys in keep) replaced by a
    marker, or left out where a marker would be larger than the value, until posted_size() is
    at most budget; None if it cannot get that small."""
    size = posted_size(text)
    if size <= budget:
        return text, []
    obj = jsonutil.loads(text)
    if not isinstance(obj, dict):
        return None
    dropped: list[Dropped] = []
    done: set[str] = set()
    while True:
        candidates = _sizes(obj, keep, done)
        if not candidates:
            return None
        # Each value's size in the post is known, so one pass drops enough (largest first); the
        # pass repeats only if a marker made the estimate short.
        excess = size - budget
        for posted, raw, key in candidates:
            if excess <= 0:
                break
            done.add(key)
            stand_in = marker(raw, reason)
            stand_in_size = posted_size(jsonutil.dumps_str(stand_in)) - 2
            if stand_in_size < posted:
                obj[key] = stand_in
                excess -= posted - stand_in_size
            else:  # a small value among very many: a marker would not make the line smaller
                del obj[key]
                excess -= posted + posted_size(key) + 1  # the key, its colon and a comma
            dropped.append(Dropped(key, raw))
        fitted = jsonutil.dumps_str(obj)
        size = posted_size(fitted)
        if size <= budget:
            return fitted, dropped


def _sizes(obj: dict[str, Any], keep: Collection[str], done: set[str]) -> list[tuple[int, int, str]]:
    """(size in a post, size as JSON, key) of the values that may go, largest first."""
    sizes = []
    for key, value in obj.items():
        if key in keep or key in done:
            continue
        raw = jsonutil.dumps_str(value)
        sizes.append((posted_size(raw) - 2, len(raw.encode()), key))
    sizes.sort(reverse=True)
    return sizes


def fit_text(text: str, budget: int, reason: str) -> str | None:
    """A console line cut short, with a note saying how much is missing and why, so that
    posted_size() is at most budget; None if not even the note fits."""

    def cut(keep: int) -> str:
        return text[:keep] + f" [nbtrack: {len(text) - keep} more characters not stored: {reason}]"

    if posted_size(text) <= budget:
        return text
    if posted_size(cut(0)) > budget:
        return None
    low, high = 0, len(text)  # cut(low) fits; find the longest that does
    while low < high:
        middle = (low + high + 1) // 2
        if posted_size(cut(middle)) <= budget:
            low = middle
        else:
            high = middle - 1
    return cut(low)


class LimitNotices:
    """What the user hears of values cut to fit the server at base_url: each line (up to a point),
    each key of the summary or the config once."""

    def __init__(self, base_url: str, limit: BodyLimit, notice: Callable[[str], None]) -> None:
        self._base_url = base_url
        self._limit = limit
        self._notice = notice
        self._said: set[str] = set()  # "summary:key", "config:key": a dropped value is said once
        self._lines = 0

    def line(self, line: str, dropped: list[Dropped], what: str) -> None:
        """Tell the user a line lost values to the server's limit (each line, up to a point)."""
        self._lines += 1
        if self._lines > MAX_LINE_NOTICES:
            return
        if dropped:
            what = f'{what} {_names(dropped)}, marked {{"_type": "{DROPPED_TYPE}"}} in its place'
        message = (
            f"{line}: too large for the tracking server at {self._base_url} "
            f"({self._limit.describe()}); {what} (the transaction log keeps it whole)"
        )
        if self._lines == MAX_LINE_NOTICES:
            message += "; further lines too large for the server are stored the same way, without a notice"
        self._notice(message)

    def dropped(self, where: str, dropped: list[Dropped]) -> None:
        """Tell the user, once per key, that the server's summary or config holds a marker for it."""
        new = [item for item in dropped if f"{where}:{item.key}" not in self._said]
        if not new:
            return
        self._said.update(f"{where}:{item.key}" for item in new)
        self._notice(
            f"{where} {_names(new)}: too large for the tracking server at {self._base_url} "
            f"({self._limit.describe()}); the server's {where} holds "
            f'{{"_type": "{DROPPED_TYPE}"}} instead (the transaction log keeps the value)'
        )


def _names(dropped: list[Dropped], most: int = 5) -> str:
    """'a' (N bytes), 'b' (M bytes) and 3 more."""
    named = ", ".join(f"{item.key!r} ({item.nbytes} bytes)" for item in dropped[:most])
    return named + (f" and {len(dropped) - most} more" if len(dropped) > most else "")

"""The run summary as define_metric() asks for it: last (default), min, max, mean, or none.

The summary is what the run's records made of it, in order (`SummaryKeeper.apply`), so it can be rebuilt
from the run's transaction log: a recovered internal process and `nbtrack sync` of a log that ends
without its exit record (rows may follow its last summary record) apply the log again.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from nbtrack import jsonutil
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.vocabulary import RESERVED_KEYS, SUMMARY_KINDS

__all__ = ["SUMMARY_KINDS", "SummaryKeeper", "parse_summary_kinds"]


def parse_summary_kinds(spec: str) -> tuple[str, ...]:
    """'min,max' -> ('min', 'max'); raises ValueError naming an unknown kind."""
    kinds = tuple(k.strip() for k in spec.split(",") if k.strip()) or ("last",)
    for kind in kinds:
        if kind not in SUMMARY_KINDS:
            raise ValueError(
                f"unknown summary {kind!r}; use one of {', '.join(SUMMARY_KINDS)} (or a comma list)"
            )
    if "none" in kinds and len(kinds) > 1:
        raise ValueError("summary 'none' cannot be combined with other kinds")
    return kinds


class SummaryKeeper:
    """Keeps the summary of every logged key; user-set values win until the key is logged again.

    With no define_metric() rules every key keeps its last value, which is one dict.update per
    row; rules are resolved once per key (globs included) and cached.
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self._rules: dict[str, tuple[str, ...]] = {}  # name or glob -> kinds
        self._resolved: dict[str, tuple[str, ...] | None] = {}  # key -> kinds, None = plain "last"
        self._means: dict[str, tuple[float, int]] = {}

    def define(self, name: str, kinds: tuple[str, ...]) -> None:
        self._rules[name] = kinds
        self._resolved.clear()
        for key in [k for k in self.values if self._kinds(k) is not None]:
            del self.values[key]  # rebuilt from the next values under the new rule

    def update(self, row: dict[str, Any]) -> None:
        if not self._rules:
            self.values.update(row)
            return
        for key, value in row.items():
            kinds = self._kinds(key)
            if kinds is None:
                self.values[key] = value
            elif kinds != ("none",):
                self._aggregate(key, value, kinds)

    def apply(self, record: pb.Record, row: dict[str, Any] | None = None) -> None:
        """What record does to the summary, live or read back from the log. row: a history
        record's values without nbtrack's own keys, if the caller parsed them already."""
        kind = record.WhichOneof("record_type")
        if kind == "history":
            self.update(row if row is not None else _logged_values(record.history.data_json))
        elif kind == "summary":
            summary = record.summary
            update = jsonutil.loads(summary.update_json) if summary.update_json else {}
            if summary.full:  # the handler's: the summary as it was then, user-set values included
                self.values = dict(update)
            else:  # the user's run.summary changes
                self.set(update, list(summary.remove))
        elif kind == "metric":
            self.define(record.metric.name, parse_summary_kinds(record.metric.summary))
        elif kind == "run" and record.run.summary_json:
            self.set(jsonutil.loads(record.run.summary_json), [])  # a resumed run's summary so far

    def set(self, update: dict[str, Any], remove: list[str]) -> None:
        """Values the user set through run.summary."""
        self.values.update(update)
        for key in remove:
            self.values.pop(key, None)

    def _kinds(self, key: str) -> tuple[str, ...] | None:
        try:
            return self._resolved[key]
        except KeyError:
            pass
        kinds = self._rules.get(key)
        if kinds is None:
            for pattern, pattern_kinds in self._rules.items():
                if fnmatch.fnmatchcase(key, pattern):
                    kinds = pattern_kinds
                    break
        resolved = None if kinds in (None, ("last",)) else kinds
        self._resolved[key] = resolved
        return resolved

    def _aggregate(self, key: str, value: Any, kinds: tuple[str, ...]) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            self.values[key] = value  # min/max/mean of a non-number (or NaN) is meaningless: keep last
            return
        current = self.values.get(key)
        entry: dict[str, Any] = dict(current) if isinstance(current, dict) else {}
        for kind in kinds:
            if kind == "last":
                entry["last"] = value
            elif kind == "min":
                entry["min"] = value if "min" not in entry else min(entry["min"], value)
            elif kind == "max":
                entry["max"] = value if "max" not in entry else max(entry["max"], value)
            elif kind == "mean":
                total, count = self._means.get(key, (0.0, 0))
                self._means[key] = (total + value, count + 1)
                entry["mean"] = (total + value) / (count + 1)
        self.values[key] = entry


def _logged_values(data_json: bytes) -> dict[str, Any]:
    """A logged row's values: what log() was given, without the keys nbtrack stamps on each row."""
    row: dict[str, Any] = jsonutil.loads(data_json)
    for key in RESERVED_KEYS:
        row.pop(key, None)
    return row

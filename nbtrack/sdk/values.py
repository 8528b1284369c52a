"""What a logged value may be, checked before anything is queued (a call is all-or-nothing).

Accepted: int, float, bool, str, None, numpy scalars and 0-d arrays/tensors (anything with
`.item()` and no axes), lists/tuples of numbers, media (`nbtrack.Image`, `Histogram`, `Table`;
see media.py) and nested dicts, which are flattened to "a/b" keys. Everything else raises
TypeError naming the key and the type. No size limit is enforced (docs/guarantees.md says what
was tested).

`check_row` is the hot path of `Run.log()`: a flat dict of floats costs one pass over its
items with no allocation but the copy; everything unusual falls to the slow path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nbtrack.sdk.media import Media, PreparedFile
from nbtrack.vocabulary import ALERT_LEVELS, RESERVED_KEYS, STEP_MAX

__all__ = [
    "MAX_DEPTH",
    "check_alert",
    "check_config",
    "check_file_name",
    "check_row",
    "check_step",
]

MAX_DEPTH = 32
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what JSON encoders and SQL columns carry exactly


def check_row(data: object) -> tuple[dict[str, Any], bool]:
    """Validate and flatten one log() payload; return (row, plain): plain rows (no NaN/inf, no
    media file) take the fast encoder; a row with an image or a table holds `PreparedFile`s that
    Run.log() names first, and NaN/inf need the exact one."""
    if type(data) is dict:
        plain = True
        for key, value in data.items():
            kind = type(value)
            if type(key) is not str or not key or key[0] == "_" or not key.isascii():
                break
            if kind is float:
                if value - value != 0.0:  # NaN or +-inf, without a function call
                    plain = False
            elif kind is int:
                if not _INT_MIN <= value <= _INT_MAX:
                    break
            elif kind is str:
                if not value.isascii():
                    break
            elif kind is not bool and value is not None:
                break
        else:
            return dict(data), plain
    if not isinstance(data, Mapping):
        raise TypeError(f"log() takes a dict of values, not {type(data).__name__}")
    row: dict[str, Any] = {}
    _flatten(data, "", row, 0)
    return row, not any(_not_plain(v) for v in row.values())


def check_step(step: object) -> int:
    """A step is a non-negative integer (numpy integers welcome)."""
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise TypeError(f"step must be a non-negative int, not {type(step).__name__}")
    value = int(step.__index__())
    if value < 0 or value > STEP_MAX:
        raise ValueError(f"step must be a non-negative int of at most 2**53 - 1, got {value}")
    return value


def check_file_name(name: object) -> str:
    """A run file's name: a relative path with '/' between parts, such as 'model.pt' or 'plots/a.png'."""
    if not isinstance(name, str):
        raise TypeError(f"a file name must be a str, not {type(name).__name__}")
    parts = name.split("/")
    if (
        not name
        or len(name) > 1024
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ValueError(
            f"file name {name!r} must be a relative path such as 'model.pt' or 'plots/loss.png' "
            "(no leading '/', no '..', no backslashes)"
        )
    return name


def check_alert(
    title: object, text: object, level: object, wait_duration: object
) -> tuple[str, str, str, float]:
    """run.alert()'s arguments as (title, text, level, wait seconds), or the error naming the bad one.

    level: "INFO", "WARN" or "ERROR" in any case, or an enum whose value is one (W&B's AlertLevel);
    wait_duration: seconds (int or float >= 0) or a datetime.timedelta.
    """
    for what, value in (("title", title), ("text", text)):
        if not isinstance(value, str):
            raise TypeError(f"alert(): {what} must be a str, not {type(value).__name__}")
        _check_text(value, f"alert(): {what}")
        if "\0" in value:
            raise ValueError(f"alert(): {what} holds a NUL character (\\x00), which a store cannot keep")
    assert isinstance(title, str) and isinstance(text, str)
    if not title.strip():
        raise ValueError("alert(): title is empty; give the alert a title, e.g. alert('loss diverged', ...)")
    named = getattr(level, "value", level)  # an Enum such as W&B's AlertLevel.WARN
    if not isinstance(named, str) or named.upper() not in ALERT_LEVELS:
        raise ValueError(
            f"alert(): level must be one of {', '.join(map(repr, ALERT_LEVELS))}, not {level!r:.60}"
        )
    seconds = wait_duration.total_seconds() if hasattr(wait_duration, "total_seconds") else wait_duration
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < math.inf:
        raise ValueError(
            "alert(): wait_duration must be seconds >= 0 (a number or a timedelta), "
            f"not {wait_duration!r:.60}"
        )
    return str(title), str(text), named.upper(), float(seconds)


def check_config(data: object, where: str = "config") -> dict[str, Any]:
    """Validate config values: the same scalars as log(), but nested dicts stay nested."""
    if not isinstance(data, Mapping):
        raise TypeError(f"{where} must be a dict, not {type(data).__name__}")
    return {_check_key(k, where): _config_value(v, f"{where}[{k!r}]", 0) for k, v in data.items()}


def _config_value(value: Any, where: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ValueError(f"{where} is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        return {
            _check_key(k, where): _config_value(v, f"{where}[{k!r}]", depth + 1) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_config_value(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    return _scalar(value, where)


def _flatten(data: Mapping[Any, Any], prefix: str, out: dict[str, Any], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"value at {prefix[:-1]!r} is nested deeper than {MAX_DEPTH} levels")
    for raw_key, value in data.items():
        key = prefix + _check_key(raw_key, "log()")
        if depth == 0 and key in RESERVED_KEYS:
            raise ValueError(
                f"key {key!r} is reserved: nbtrack sets {', '.join(sorted(RESERVED_KEYS))} itself"
            )
        if isinstance(value, Mapping):
            _flatten(value, key + "/", out, depth + 1)
            continue
        if key in out:  # {"a/b": 1, "a": {"b": 2}}: one of the two would vanish without a word
            raise ValueError(f"log(): key {key!r} is given twice (a nested dict flattens to the same name)")
        if isinstance(value, (list, tuple)):
            out[key] = [_number(v, f"{key}[{i}]") for i, v in enumerate(value)]
        elif isinstance(value, Media):
            out[key] = value._prepare(key)  # checked and snapshotted now; a file is written later
        else:
            out[key] = _scalar(value, key)


def _check_key(key: object, where: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}; keys must be str")
    if not key:
        raise ValueError(f"{where}: empty key; name each value")
    _check_text(key, f"key {key!r}")
    # A str subclass (numpy.str_, a str Enum) as a key makes the JSON encoder fail later, far from
    # the call: keep its text as a plain str.
    return key if type(key) is str else str.__str__(key)


def _check_text(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not valid unicode (a lone surrogate?): {exc.reason}") from None


def _scalar(value: Any, key: str) -> Any:
    if value is None or isinstance(value, (bool, float)):
        return value if not isinstance(value, float) or type(value) is float else float(value)
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValueError(
                f"value of {key!r} is an int too large to store exactly ({value.bit_length()} bits)"
            )
        return int(value)
    if isinstance(value, str):
        _check_text(value, f"value of {key!r}")
        return str(value)
    item = _item_of_scalar(value, key)
    if item is not None:
        return _scalar(item, key)
    raise TypeError(
        f"value of {key!r} has type {type(value).__module__}.{type(value).__qualname__}; "
        "log numbers, strings, bools, None, lists of numbers or dicts of those"
    )


def _number(value: Any, key: str) -> float | int | None:
    if isinstance(value, Media):
        raise TypeError(
            f"value of {key!r} is an nbtrack.{type(value).__name__} in a list; lists hold numbers only, "
            "so log each under a key of its own (e.g. {'images/0': ..., 'images/1': ...})"
        )
    result = _scalar(value, key)
    if result is None or isinstance(result, (int, float)):
        return result
    raise TypeError(f"value of {key!r} has type {type(value).__name__}; lists may hold numbers only")


def _item_of_scalar(value: Any, key: str) -> Any:
    """The Python value of a numpy scalar or a one-element array/tensor; None if it is not one."""
    item = getattr(value, "item", None)
    if item is None or not callable(item):
        return None
    if getattr(value, "ndim", 0):  # numpy arrays and torch tensors with at least one axis
        raise TypeError(
            f"value of {key!r}: a {type(value).__name__} with shape {getattr(value, 'shape', '?')} is "
            "not a scalar; log one number per key (e.g. .mean()) or a list via .tolist()"
        )
    try:
        result = item()
    except Exception as exc:
        # .item() is the value's own code (a tensor on a failed device, a lazy array that cannot
        # compute): its error alone says nothing of which key held it.
        raise ValueError(
            f"value of {key!r}: its .item() raised {type(exc).__name__}: {exc}; log a plain number instead"
        ) from exc
    return result if isinstance(result, (bool, int, float, str)) else None


def _not_plain(value: Any) -> bool:
    if isinstance(value, PreparedFile):
        return True  # not for the fast path either: Run.log() gives it a file name first
    if isinstance(value, float):
        return not math.isfinite(value)
    return isinstance(value, list) and any(isinstance(v, float) and not math.isfinite(v) for v in value)

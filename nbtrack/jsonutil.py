"""JSON in nbtrack's dialect: standard JSON plus the bare tokens NaN, Infinity and -Infinity.

Every value a user logs must round-trip exactly, non-finite floats included, and that is also
what the Weights & Biases wire protocol sends. orjson is fast but writes NaN as null, so
`dumps` uses it only when the caller knows there is no non-finite float (the hot path checks
that while validating) and `loads` falls back to the standard library when orjson refuses a token.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

__all__ = ["dumps", "dumps_str", "has_nonfinite", "loads"]


def dumps(value: Any, *, finite: bool = False) -> bytes:
    """Encode value; pass finite=True only when value is known to hold no NaN or infinity."""
    if finite or not has_nonfinite(value):
        return orjson.dumps(value)
    return json.dumps(value, allow_nan=True, separators=(",", ":"), ensure_ascii=False).encode()


def dumps_str(value: Any, *, finite: bool = False) -> str:
    return dumps(value, finite=finite).decode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data).decode()
        return json.loads(data)


def has_nonfinite(value: Any) -> bool:
    """True when value (or anything nested in it) is a NaN or an infinite float."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(has_nonfinite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_nonfinite(v) for v in value)
    return False

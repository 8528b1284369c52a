"""What the live panel may send: the caps on every synced value, and the sanitizers that cut
user values to them.

Size invariant: `RunPanel.set_state` sends one comm message holding only the traits whose value
changed, and every part of it is capped here (keys, strings, metric count, series count, points
per series, digits per point), so that message never exceeds `MAX_UPDATE_BYTES` of UTF-8 JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

from nbtrack.formatting import downsample_min_max, format_number
from nbtrack.internal.run_artifact_list import LIVE_ARTIFACTS
from nbtrack.internal.sampler import LIVE_POINTS, LIVE_SERIES
from nbtrack.vocabulary import MEDIA_TYPES

__all__ = [
    "MAX_ALERTS",
    "MAX_ALERT_TEXT_CHARS",
    "MAX_ALERT_TITLE_CHARS",
    "MAX_ARTIFACTS",
    "MAX_DETAILS",
    "MAX_HEADER_CHARS",
    "MAX_HISTOGRAM_BARS",
    "MAX_IMAGE_SRC_CHARS",
    "MAX_KEY_CHARS",
    "MAX_METRICS",
    "MAX_NOTICES",
    "MAX_NOTICE_CHARS",
    "MAX_POINTS",
    "MAX_SERIES",
    "MAX_STATE_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_UPDATE_BYTES",
    "SERIES_DIGITS",
    "clean_histogram",
    "clean_image",
    "clean_series",
    "clean_text",
    "clean_value",
    "is_media",
    "safe_url",
    "shown",
]

MAX_POINTS = LIVE_POINTS  # per series: the first and newest points plus 49 min/max buckets
MAX_SERIES = LIVE_SERIES  # charts per panel (what the handler sends); further series are only counted
MAX_METRICS = 50  # latest values per panel; further keys are only counted
MAX_NOTICES = 5
# The newest alerts (run.alert()), each a level (one of ALERT_LEVELS), a title and a text cut short:
# the web UI and the read API have them whole.
MAX_ALERTS = 3
MAX_ALERT_TITLE_CHARS = 60
MAX_ALERT_TEXT_CHARS = 80
# The newest artifacts the run logged or used (run.log_artifact/use_artifact), a line each; the
# web UI's artifact pages have them whole.
MAX_ARTIFACTS = LIVE_ARTIFACTS
MAX_DETAILS = 2  # lines under the status: where the steps came from, the machine's load
MAX_KEY_CHARS = 40
MAX_TEXT_CHARS = 64  # a string metric value
MAX_NOTICE_CHARS = 160
MAX_HEADER_CHARS = 200
MAX_STATE_CHARS = 16
SERIES_DIGITS = 6  # significant digits of a charted value: plenty for a 40-pixel-high line
MAX_IMAGE_SRC_CHARS = 12_000  # the newest image, as a data: URL of a thumbnail of at most this length
MAX_HISTOGRAM_BARS = 32  # the newest histogram, its bins merged down to at most this many
_SAFE_INT = 2**53  # beyond this JavaScript numbers are not exact; steps past it are dropped


def _json_str(chars: int) -> int:
    # Quotes plus at most 4 UTF-8 bytes per character: control characters are replaced before
    # sending, so the only escapes left are \" and \\ (2 bytes). Jupyter encodes messages with
    # ensure_ascii=False (jupyter_client.session.json_packer), which this counts.
    return 2 + 4 * chars


_JSON_INT = len(str(-(2**63)))  # 20: an int64, the longest integer we send
_JSON_STEP = len(str(-_SAFE_INT))  # 17
_JSON_FLOAT = len(repr(-2.2250738585072014e-308))  # 24: the longest float repr
_JSON_SERIES_VALUE = len(repr(-1.23457e-308))  # 13: a float rounded to SERIES_DIGITS
_JSON_VALUE = max(_JSON_FLOAT, _json_str(MAX_TEXT_CHARS), len("false"))
_SERIES_ENTRY = (
    _json_str(MAX_KEY_CHARS)
    + len(': {"steps": [], "values": []}, ')
    + MAX_POINTS * (_JSON_STEP + 2)
    + MAX_POINTS * (_JSON_SERIES_VALUE + 2)
)
MAX_UPDATE_BYTES = (
    256  # {"method": "update", "state": {...}, "buffer_paths": []} and the ten trait names
    + _json_str(MAX_STATE_CHARS)
    + _JSON_INT  # step
    + _JSON_FLOAT  # runtime
    + 2 + MAX_METRICS * (_json_str(MAX_KEY_CHARS) + 2 + _JSON_VALUE + 2)
    + 2 + MAX_SERIES * _SERIES_ENTRY
    + len('{"rows": , "bytes": }') + 2 * _JSON_INT
    + 2 + MAX_NOTICES * (_json_str(MAX_NOTICE_CHARS) + 2)
    + 2 + MAX_DETAILS * (_json_str(MAX_NOTICE_CHARS) + 2)
    + 2 * _JSON_INT  # metrics_omitted, series_omitted
    + len('{"image": {"key": , "caption": , "src": , "width": , "height": }, "histogram": '
          '{"key": , "bins": [], "values": []}}')
    + 2 * _json_str(MAX_KEY_CHARS) + _json_str(MAX_TEXT_CHARS) + MAX_IMAGE_SRC_CHARS + 2 + 2 * _JSON_INT
    + (2 * MAX_HISTOGRAM_BARS + 1) * (_JSON_SERIES_VALUE + 2)
    + 2 + MAX_ALERTS * (len('{"level": , "title": , "text": }') + _json_str(len("ERROR"))
                        + _json_str(MAX_ALERT_TITLE_CHARS) + _json_str(MAX_ALERT_TEXT_CHARS) + 2)
    + 2 + MAX_ARTIFACTS * (len('{"role": , "type": , "name": , "version": , "files": , "bytes": }')
                           + _json_str(len("logged")) + 2 * _json_str(MAX_KEY_CHARS)
                           + _json_str(MAX_STATE_CHARS) + 2 * _JSON_INT + 2)
    + _JSON_INT  # artifacts_omitted
)  # fmt: skip


# -- capping user values ----------------------------------------------------------------------

_CONTROL = {i: " " for i in (*range(32), 127)}


def clean_text(value: str, limit: int) -> str:
    """At most `limit` characters, no control characters, encodable as UTF-8."""
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    value = value.translate(_CONTROL)
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    return value


def clean_value(value: object) -> float | int | str | bool | None:
    """A metric's latest value as the panel shows it: a JSON scalar of bounded length."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Integral):
        number = int(value)
        if abs(number) <= _SAFE_INT:
            return number
        try:
            return float(number)  # what JavaScript would make of it anyway
        except OverflowError:
            return "inf" if number > 0 else "-inf"
    if isinstance(value, Real):
        f = float(value)
        return f if math.isfinite(f) else format_number(f)
    if isinstance(value, str):
        return clean_text(value, MAX_TEXT_CHARS)
    if isinstance(value, Mapping):
        return f"{{{len(value)} keys}}"
    if isinstance(value, (list, tuple)):
        return f"[{len(value)} items]"
    return clean_text(f"<{type(value).__name__}>", MAX_TEXT_CHARS)


def is_media(value: object) -> bool:
    """A media reference (an image, histogram or table that log() stored): not a metric card."""
    return isinstance(value, Mapping) and value.get("_type") in MEDIA_TYPES


def shown(key: object) -> bool:
    # Keys starting with "_" are reserved for the tracker itself (_step, _runtime, _timestamp).
    return isinstance(key, str) and bool(key) and not key.startswith("_")


def _series_points(raw: object) -> tuple[Sequence[Any], Sequence[Any]]:
    if isinstance(raw, Mapping):
        return raw.get("steps") or (), raw.get("values") or ()
    if isinstance(raw, (tuple, list)) and len(raw) == 2:
        return raw[0], raw[1]
    return (), ()


def clean_series(raw: object) -> dict[str, list[Any]]:
    steps, values = _series_points(raw)
    xs, ys = downsample_min_max(steps, values, MAX_POINTS)
    out_steps: list[int] = []
    out_values: list[float] = []
    for s, v in zip(xs, ys, strict=True):
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
            continue
        step = int(s)
        if abs(step) <= _SAFE_INT:
            out_steps.append(step)
            out_values.append(float(f"{v:.{SERIES_DIGITS}g}"))
    return {"steps": out_steps, "values": out_values}


def safe_url(url: str | None) -> str | None:
    if not url or not re.match(r"https?://", url, re.I):
        return None  # never a javascript: or data: link
    return clean_text(url, 2000)


# -- media references ------------------------------------------------------------------------------------

_IMAGE_SRC = re.compile(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/]*={0,2}")


def clean_image(raw: object) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("src"), str):
        return None
    src = raw["src"]
    if len(src) > MAX_IMAGE_SRC_CHARS or not _IMAGE_SRC.fullmatch(src):
        return None  # only a small inline PNG or JPEG: never a link the front-end would follow
    caption = raw.get("caption")
    return {
        "key": clean_text(str(raw.get("key", "")), MAX_KEY_CHARS),
        "caption": clean_text(caption, MAX_TEXT_CHARS) if isinstance(caption, str) else None,
        "src": src,
        "width": _clean_size(raw.get("width")),
        "height": _clean_size(raw.get("height")),
    }


def _clean_size(value: object) -> int:
    return max(0, min(2**31, int(value))) if isinstance(value, Integral) else 0


def clean_histogram(raw: object) -> dict[str, Any] | None:
    """The histogram's bins merged to at most MAX_HISTOGRAM_BARS; None unless its shape is right."""
    if not isinstance(raw, Mapping):
        return None
    edges, counts = raw.get("bins"), raw.get("values")
    if not isinstance(edges, Sequence) or not isinstance(counts, Sequence) or len(edges) != len(counts) + 1:
        return None
    if not counts or not all(isinstance(v, Real) and math.isfinite(v) for v in (*edges, *counts)):
        return None
    group = math.ceil(len(counts) / MAX_HISTOGRAM_BARS)
    merged = [float(sum(counts[i : i + group])) for i in range(0, len(counts), group)]
    kept_edges = [float(edges[i]) for i in range(0, len(counts), group)] + [float(edges[-1])]
    return {
        "key": clean_text(str(raw.get("key", "")), MAX_KEY_CHARS),
        "bins": [float(f"{e:.{SERIES_DIGITS}g}") for e in kept_edges],
        "values": [float(f"{c:.{SERIES_DIGITS}g}") for c in merged],
    }

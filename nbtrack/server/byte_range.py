"""The one byte range of a `Range: bytes=...` header a download answers with 206 (RFC 9110 §14).

wandb-core reads a history export's parquet (history_export.py) in place when `scan_history`
is given keys or `use_cache=False`: it asks `bytes=0-0` for the size (Content-Range), then the
footer (`bytes=-N`), then each column chunk (`bytes=A-B`), and gives up on a 200 ("server ignored
range request"). One range is all it asks; a header of several (or of another unit, or not
parseable) is ignored and the whole file answered, as the RFC allows.
"""

from __future__ import annotations

import re

from nbtrack.server.errors import ApiError

__all__ = ["byte_range"]

_ONE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte, inclusive, of the file of size bytes the header asks; None for the whole
    file. ApiError RANGE_NOT_SATISFIABLE for a range that starts past the end (or an empty suffix)."""
    match = _ONE_RANGE.fullmatch(header.strip()) if header else None
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)  # the last N bytes
        if suffix == 0:
            raise _unsatisfiable(header or "", size)
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # invalid: ignored, as the RFC says
    if first >= size:
        raise _unsatisfiable(header or "", size)
    return first, min(last, size - 1)


def _unsatisfiable(header: str, size: int) -> ApiError:
    return ApiError(
        "RANGE_NOT_SATISFIABLE",
        f"the range {header[:60]!r} is outside the file of {size} bytes",
        headers={"Content-Range": f"bytes */{size}"},
    )

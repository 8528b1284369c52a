"""Request bodies: read within a size limit, and JSON envelopes parsed into a checked object.

The envelope (a GraphQL request, a file-stream post) is standard JSON, parsed by orjson alone:
NaN and Infinity only ever appear inside the JSON *strings* it carries (history rows, config),
and orjson refuses what a database could not store (lone surrogates).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from nbtrack.server.errors import ApiError

# Deepest nesting of containers accepted in a JSON value the server parses and stores.
MAX_NESTING = 64

__all__ = [
    "LIMIT_HEADER",
    "MAX_NESTING",
    "body_chunks",
    "check_json_type",
    "check_length",
    "json_kind",
    "log_if_too_large",
    "parse_object",
    "read_body",
    "too_deep",
    "too_large",
]


def check_length(request: Request, limit: int) -> None:
    """ApiError PAYLOAD_TOO_LARGE if the declared Content-Length exceeds limit (before reading a byte)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise ApiError("BAD_REQUEST", f"the Content-Length header {declared[:40]!r} is not a byte count")
        if len(declared) > 18 or int(declared) > limit:
            raise too_large("the body", limit)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or ApiError PAYLOAD_TOO_LARGE as soon as it is known to exceed limit bytes."""
    check_length(request, limit)
    chunks = []
    size = 0
    async for chunk in body_chunks(request):  # counted too: a chunked body declares no length
        size += len(chunk)
        if size > limit:
            raise too_large("the body", limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def body_chunks(request: Request) -> AsyncIterator[bytes]:
    """The body as it arrives; a client that leaves half-way is a bad request, not a server failure."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise ApiError("BAD_REQUEST", "the client disconnected before sending the whole body") from None


def check_json_type(request: Request) -> None:
    """ApiError UNSUPPORTED_MEDIA_TYPE unless the body is declared JSON (or not declared at all)."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media_type = declared.partition(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ApiError(
            "UNSUPPORTED_MEDIA_TYPE", f"the body must be application/json, not {media_type[:60] or 'empty'!r}"
        )


def parse_object(body: bytes, what: str) -> dict[str, Any]:
    """The body as a JSON object, or ApiError BAD_REQUEST saying what is wrong with it."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError("BAD_REQUEST", f"the {what} body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError("BAD_REQUEST", f"the {what} body must be a JSON object, not {json_kind(value)}")
    return value


def too_deep(value: Any) -> bool:
    """True when containers nest deeper than MAX_NESTING in value.

    The server re-encodes the values it parsed (config, summary, picked history keys) with
    orjson, which refuses nesting deeper than 255 levels; refusing such input on the way in
    keeps it from failing on the way out.
    """
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_NESTING:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


# A 413 names the limit here too, so a client can size its next requests without guessing
# (nbtrack/online/client.py reads it).
LIMIT_HEADER = "X-Nbtrack-Body-Limit"


def too_large(what: str, limit: int) -> ApiError:
    return ApiError(
        "PAYLOAD_TOO_LARGE",
        f"{what} is larger than this server's limit of {limit} bytes",
        headers={LIMIT_HEADER: str(limit)},
    )


def log_if_too_large(what: str, exc: ApiError) -> None:
    """Name an upload refused for its size in the server's log: wandb-core tells no one but its
    debug log (a run file, an artifact's file), so the operator is the one who can tell the user."""
    if exc.code == "PAYLOAD_TOO_LARGE":
        logging.getLogger("nbtrack.server").warning("refused %s: %s (--max-upload)", what, exc)

"""The one error shape every 4xx and 5xx answer of the server has, whatever the endpoint.

GraphQL's own: {"errors": [{"message": ..., "extensions": {"code": ...}}]}, so a GraphQL client
reads a REST error the way it reads a GraphQL one, and the message names the culprit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from nbtrack.errors import NbtrackError

__all__ = ["CODES", "ApiError", "error_body", "error_response"]

# The HTTP status each code goes with.
CODES = {
    "BAD_REQUEST": 400,
    "UNAUTHENTICATED": 401,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "REQUEST_TIMEOUT": 408,
    "CONFLICT": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "RANGE_NOT_SATISFIABLE": 416,
    "RATE_LIMITED": 429,
    "INTERNAL": 500,
}


class ApiError(NbtrackError):
    """A request the server refuses; raised anywhere below an endpoint, answered in the error shape."""

    def __init__(self, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = dict(headers or {})  # sent with the answer (Retry-After, Connection: close)

    @property
    def status(self) -> int:
        return CODES[self.code]


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def error_response(
    error: ApiError, headers: Mapping[str, str] | None = None, status: int | None = None
) -> Response:
    """The error as an HTTP answer, with its code's status unless status says otherwise."""
    return Response(
        orjson.dumps(error_body(error.code, error.message)),
        status_code=status or error.status,
        headers={**error.headers, **(headers or {})},
        media_type="application/json",
    )

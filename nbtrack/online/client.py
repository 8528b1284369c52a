"""HTTP to a tracking server that speaks the W&B wire protocol: GraphQL, the file stream, uploads.

One `requests.Session` (keep-alive, HTTP Basic auth `api:<key>`) per client. Every call is one
attempt that either returns or raises `Transient` (worth retrying) or `Rejected` (the server said
no; the message quotes it), `TooLarge` when what it refused was the body's size; `retrying()`
wraps a call in a `RetryPolicy`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

import orjson
import requests

from nbtrack.online.retry import (
    Rejected,
    RetryPolicy,
    TooLarge,
    Transient,
    is_transient_status,
    parse_retry_after,
)
from nbtrack.settings import check_base_url

__all__ = ["LIMIT_HEADER", "ServerClient", "graphql_body"]

logger = logging.getLogger("nbtrack")
T = TypeVar("T")

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0  # a large history post on a busy server can take a while
UPLOAD_READ_TIMEOUT = 300.0
UPLOAD_CHUNK = 1 << 20  # an upload asked to stop ends before its next chunk of this many bytes
# nbtrack's server names its body limit in this header of a 413 (nbtrack/server/body.py sends it),
# so a client knows at once how small its requests must be; other servers and proxies do not.
LIMIT_HEADER = "X-Nbtrack-Body-Limit"


def graphql_body(query: str, variables: dict[str, Any] | None = None) -> bytes:
    """The request body of a GraphQL call, as `ServerClient.graphql` sends it (callers size it)."""
    return orjson.dumps({"query": query, "variables": variables or {}})


class ServerClient:
    """The calls nbtrack makes to one tracking server."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.policy = policy or RetryPolicy()
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "nbtrack"
        if api_key:
            self._session.auth = ("api", api_key)

    def close(self) -> None:
        self._session.close()

    # -- one attempt each ----------------------------------------------------------------------

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a GraphQL answer; GraphQL errors are `Rejected` with the server's words."""
        body = graphql_body(query, variables)
        answer = self._json(self._request("POST", "/graphql", body, "application/json"))
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if errors:
            raise Rejected(f"the tracking server at {self.base_url} said: {_first_message(answer)}")
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict):
            raise Rejected(f"the tracking server at {self.base_url} sent a GraphQL answer without data")
        return data

    def file_stream(self, entity: str, project: str, run_id: str, body: bytes) -> Any:
        path = f"/files/{_seg(entity)}/{_seg(project)}/{_seg(run_id)}/file_stream"
        return self._json(self._request("POST", path, body, "application/json"))

    def upload(
        self,
        url: str,
        path: Path,
        headers: dict[str, str] | None = None,
        *,
        stop: threading.Event | None = None,
    ) -> None:
        """PUT a file's bytes to an upload URL (from CreateRunFiles); streamed, not read into memory.
        stop: once set, the upload ends (Transient) before its next UPLOAD_CHUNK is sent, so a large
        file does not hold up a run that gave up delivering."""
        with path.open("rb") as data:
            body = data if stop is None else _StoppableBody(data, path.stat().st_size, stop, self.base_url)
            self._request(
                "PUT", url, body, "application/octet-stream", headers, read_timeout=UPLOAD_READ_TIMEOUT
            )

    def upload_bytes(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        """PUT a small body (an artifact's manifest) to an upload URL."""
        self._request("PUT", url, body, "application/octet-stream", headers, read_timeout=UPLOAD_READ_TIMEOUT)

    def get(self, path: str) -> requests.Response:
        return self._request("GET", path, None, None)

    def get_stream(self, path_or_url: str) -> requests.Response:
        """GET whose body is read as it arrives (`iter_content`), so a large file never sits in
        memory; the caller closes the response."""
        return self._request("GET", path_or_url, None, None, read_timeout=UPLOAD_READ_TIMEOUT, stream=True)

    def _request(
        self,
        method: str,
        path_or_url: str,
        body: Any,
        content_type: str | None,
        headers: dict[str, str] | None = None,
        read_timeout: float = READ_TIMEOUT,
        stream: bool = False,
    ) -> requests.Response:
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        sent = dict(headers or {})
        if content_type:
            sent["Content-Type"] = content_type
        try:
            response = self._session.request(
                method,
                url,
                data=body,
                headers=sent,
                timeout=(CONNECT_TIMEOUT, read_timeout),
                stream=stream,
            )
        except requests.RequestException as exc:
            raise Transient(f"cannot reach the tracking server at {self.base_url}: {_reason(exc)}") from exc
        status = response.status_code
        if status < 400:
            return response
        said = _first_message(_maybe_json(response))
        if is_transient_status(status):
            raise Transient(
                f"the tracking server at {self.base_url} answered {status} ({said})",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status == 413:
            raise TooLarge(
                f"the tracking server at {self.base_url} answered 413: {said}",
                len(body) if isinstance(body, bytes) else 0,
                _limit(response.headers.get(LIMIT_HEADER)),
            )
        if status == 401:
            raise Rejected(
                f"the tracking server at {self.base_url} refused the API key (HTTP 401: {said}); "
                "set NBTRACK_API_KEY or pass api_key= (create one with `nbtrack server key create ENTITY`)",
                status,
            )
        raise Rejected(f"the tracking server at {self.base_url} answered {status}: {said}", status)

    def _json(self, response: requests.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise Transient(f"the tracking server at {self.base_url} sent a reply that is not JSON") from exc

    # -- retried -------------------------------------------------------------------------------

    def retrying(
        self,
        call: Callable[[], T],
        *,
        stop: threading.Event,
        on_retry: Callable[[Transient, int, float], None] | None = None,
        deadline: float | None = None,
    ) -> T:
        """call() until it does not raise Transient; raises the last Transient when stop is set
        or the next wait would pass deadline (time.monotonic()); Rejected passes straight through."""
        attempt = 0
        while True:
            try:
                return call()
            except Transient as exc:
                attempt += 1
                wait = self.policy.delay(attempt, exc.retry_after)
                if stop.is_set() or (deadline is not None and time.monotonic() + wait > deadline):
                    raise
                if on_retry is not None:
                    on_retry(exc, attempt, wait)
                if stop.wait(wait):
                    raise


class _StoppableBody:
    """A file's bytes as a request body sent UPLOAD_CHUNK at a time, ending (Transient) once stop is
    set. Its length makes requests send a Content-Length, as for the file itself."""

    def __init__(self, data: BinaryIO, size: int, stop: threading.Event, base_url: str) -> None:
        self._data, self._size, self._stop, self._base_url = data, size, stop, base_url

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        left = self._size
        while left > 0:
            if self._stop.is_set():
                raise Transient(f"an upload to the tracking server at {self._base_url} was given up")
            chunk = self._data.read(min(UPLOAD_CHUNK, left))
            if not chunk:  # never send fewer bytes than announced: the server would wait for them
                raise Rejected(f"{getattr(self._data, 'name', 'a file')} shrank while it was uploaded")
            left -= len(chunk)
            yield chunk


def _seg(name: str) -> str:
    return quote(name, safe="")


def _maybe_json(response: requests.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]


def _limit(value: str | None) -> int | None:
    """The limit a 413 named, if it is a plausible byte count."""
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None
    return int(value)


def _first_message(answer: Any) -> str:
    """The first error message of the server's error shape, or the start of whatever it sent."""
    if isinstance(answer, dict):
        errors = answer.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message", errors[0]))
        if "error" in answer:
            return str(answer["error"])
    return str(answer)[:200] or "no details"


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed" if "Connection refused" not in str(exc) else "connection refused"
    return type(exc).__name__

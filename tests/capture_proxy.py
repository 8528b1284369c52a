"""A logging reverse proxy for tests: it records what a client really sends, and forwards it unchanged.

    with CaptureProxy(server.url) as proxy:
        ...point the client at proxy.url...
    proxy.records  # every request, in order

Observation only: bodies and answers pass through as they are (the Host header too, so the
server's signed URLs point back at the proxy). A GraphQL request is recorded with its
operationName, query and variables; a file_stream post with its body; anything else with its
method, path and size. Stdlib only, one thread per connection.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["CaptureProxy", "Record"]

_UPSTREAM_TIMEOUT = 60.0
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"})


@dataclass
class Record:
    method: str
    path: str
    status: int = 0
    operation: str | None = None  # GraphQL operationName as sent ("" kept as "")
    query: str | None = None
    variables: Any = None
    body: Any = None  # file_stream: the parsed body
    size: int = 0
    answer: Any = field(default=None, repr=False)  # GraphQL: the parsed answer
    target: str = ""  # the path as sent, with its query string
    raw: bytes = field(default=b"", repr=False)  # the body as sent


class CaptureProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self.records: list[Record] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream = http.client.HTTPConnection(proxy._host, proxy._port, timeout=_UPSTREAM_TIMEOUT)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    answer = response.read()
                    status, reason, answer_headers = response.status, response.reason, response.getheaders()
                finally:
                    upstream.close()
                proxy._record(self.command, self.path, body, status, answer)
                self.send_response(status, reason)
                for name, value in answer_headers:
                    if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hangs up between requests: nothing to record

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _record(self, method: str, path: str, body: bytes, status: int, answer: bytes) -> None:
        record = Record(method, path.split("?", 1)[0], status, size=len(body), target=path, raw=body)
        if record.path.endswith("/graphql") and body:
            try:
                request = json.loads(body)
                record.operation = request.get("operationName")
                record.query = request.get("query")
                record.variables = request.get("variables")
                record.answer = json.loads(answer)
            except ValueError:
                pass
        elif record.path.endswith("/file_stream") and body:
            with contextlib.suppress(ValueError):
                record.body = json.loads(body)
        with self._lock:
            self.records.append(record)

    def graphql(self) -> list[Record]:
        with self._lock:
            return [r for r in self.records if r.query is not None]

    def __enter__(self) -> CaptureProxy:
        self._thread.start()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)

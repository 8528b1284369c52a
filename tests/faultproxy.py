"""A fault-injecting HTTP/1.1 proxy for tests.

It sits between nbtrack's HTTP client and a real server on loopback and drops, resets, fails or delays
requests, so tests can prove the client survives outages without a flaky network. Stdlib only, one daemon
thread per client connection, and a fresh upstream connection per request (`Connection: close`), so the
proxy itself never has to guess whether a stale pooled connection carried a request or not.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO
from urllib.parse import urlsplit

__all__ = ["KINDS", "FaultProxy", "Faults"]

KINDS = ("drop", "reset", "500", "429", "503", "drop_after_forward")
Headers = list[tuple[str, str]]

# Headers that describe one hop, not the message: the proxy re-frames every body with Content-Length.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
    | {"content-length", "expect"}
)
_MAX_LINE = 65536
_UPSTREAM_TIMEOUT = 30.0
_ERRORS = {
    400: ("Bad Request", "BAD_REQUEST"),
    429: ("Too Many Requests", "RATE_LIMITED"),
    500: ("Internal Server Error", "INTERNAL"),
    502: ("Bad Gateway", "BAD_GATEWAY"),
    503: ("Service Unavailable", "UNAVAILABLE"),
}


class _Closed(Exception):
    """The peer (or stop()/down) closed the connection mid-message: there is nobody left to answer."""


class _BadMessage(Exception):
    """Unparseable HTTP: the framing of the connection can no longer be trusted."""


@dataclass
class Faults:
    """What to break. Read once per request, so a test may swap or mutate it while the proxy runs."""

    fail_rate: float = 0.0  # fraction of requests answered with an injected failure instead of forwarding
    kinds: tuple[str, ...] = ("drop", "500", "429")  # picked uniformly; see KINDS
    retry_after: float = 0.2  # seconds; sent as the integer ceiling ("1"), since HTTP wants delta-seconds
    delay: float = 0.0  # seconds slept before every request is answered (forwarded or injected)
    seed: int | None = None  # random.Random(seed): reproducible fault sequences
    # Requests of these methods ("PUT": uploads) are held unanswered, their bodies read, while the
    # method stays listed (a test clears it to let them through) and the proxy runs: a stalled upload.
    stall: tuple[str, ...] = ()
    put_rate: float = (
        0.0  # bytes a second at which a PUT's body is read (0: as fast as it comes): a slow upload
    )

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be a non-empty subset of {KINDS}, got {self.kinds!r}")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"fail_rate must be within [0, 1], got {self.fail_rate!r}")


def _readline(rfile: BinaryIO) -> bytes:
    line = rfile.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise _BadMessage("line too long")
    return line


def _read_head(rfile: BinaryIO) -> tuple[str, Headers] | None:
    """Start line and headers; None when the peer closed cleanly between messages (idle keep-alive)."""
    line = _readline(rfile)
    while line in (b"\r\n", b"\n"):  # RFC 9112 tolerates stray CRLFs between messages
        line = _readline(rfile)
    if not line:
        return None
    headers: Headers = []
    while (raw := _readline(rfile)) not in (b"\r\n", b"\n"):
        if not raw:
            raise _Closed("closed inside the headers")
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep or not name.strip():
            raise _BadMessage(f"bad header line {raw!r}")
        headers.append((name.strip(), value.strip()))
    return line.decode("latin-1").rstrip("\r\n"), headers


def _get(headers: Headers, name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name), None)


def _read_exact(rfile: BinaryIO, size: int) -> bytes:
    data = rfile.read(size)
    if len(data) < size:
        raise _Closed("closed inside a body")
    return data


def _read_chunked(rfile: BinaryIO) -> bytes:
    """De-chunk a body (trailers are dropped: nothing nbtrack sends uses them)."""
    parts = []
    while True:
        line = _readline(rfile)
        if not line:
            raise _Closed("closed inside a chunked body")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadMessage(f"bad chunk size {line!r}") from None
        if size == 0:
            break
        parts.append(_read_exact(rfile, size))
        if _readline(rfile) not in (b"\r\n", b"\n"):
            raise _BadMessage("chunk not followed by CRLF")
    while _readline(rfile) not in (b"\r\n", b"\n", b""):
        pass
    return b"".join(parts)


def _read_body(rfile: BinaryIO, headers: Headers, *, until_eof: bool) -> bytes | None:
    """The body by chunked framing, Content-Length, or (responses only) until close; None when absent."""
    if "chunked" in (_get(headers, "transfer-encoding") or "").lower():
        return _read_chunked(rfile)
    length = _get(headers, "content-length")
    if length is not None:
        if not length.isdigit():  # int() would accept "+5" or "5_0", which smuggle past other parsers
            raise _BadMessage(f"bad Content-Length {length!r}")
        return _read_exact(rfile, int(length))
    return rfile.read() if until_eof else None


def _serialize(start: str, headers: Headers, body: bytes | None) -> bytes:
    """One message framed by Content-Length (no header at all when body is None)."""
    lines = [start, *(f"{key}: {value}" for key, value in headers)]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def _connection_tokens(headers: Headers) -> set[str]:
    return {token.strip().lower() for token in (_get(headers, "connection") or "").split(",")}


class FaultProxy:
    """Forward HTTP to `upstream`, injecting `faults`; `down` makes the 'server' unreachable."""

    def __init__(self, upstream: str, faults: Faults | None = None) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self._upstream = (parts.hostname, parts.port or 80)
        self.faults = faults if faults is not None else Faults()
        self.stats: Counter[str] = Counter()
        self.url = ""  # set by start()
        self._down = False
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._rng_for: Faults | None = None
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()

    @property
    def down(self) -> bool:
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        """Going down also cuts open keep-alive connections, as a dead server would."""
        self._down = value
        if value:
            self._shutdown_all()

    def start(self) -> FaultProxy:
        self._stopping.clear()
        listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        listener.settimeout(0.05)  # the accept loop polls _stopping: closing a socket does not wake accept()
        self._listener = listener
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Close the listener and cut every connection; waits at most ~2 s for the threads."""
        self._stopping.set()
        deadline = time.monotonic() + 2.0
        if self._acceptor is not None:
            self._acceptor.join(timeout=1.0)
        if self._listener is not None:
            self._listener.close()
        self._shutdown_all()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=max(deadline - time.monotonic(), 0.0))

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def _shutdown_all(self) -> None:
        """shutdown() wakes a thread blocked in recv/send; each owning thread then closes its own socket."""
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._down:
                self._count("refused")
                conn.close()
                continue
            conn.settimeout(None)
            thread = threading.Thread(target=self._serve, args=(conn,), name="faultproxy-conn", daemon=True)
            with self._lock:
                self.stats["connections"] += 1
                self._sockets.add(conn)
                self._threads.add(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        try:
            while not self._stopping.is_set() and not self._down and self._handle_one(conn, rfile):
                pass
        except _BadMessage:
            self._count("bad_request")
            with contextlib.suppress(OSError):
                conn.sendall(self._error(400, "malformed request", keep_alive=False))
        except (_Closed, OSError):
            pass
        finally:
            with self._lock:
                self._sockets.discard(conn)
                self._threads.discard(threading.current_thread())
            rfile.close()
            conn.close()

    def _pick(self) -> tuple[Faults, str | None]:
        """This request's fault (None: forward it); one RNG per Faults object, so a seed replays exactly."""
        faults = self.faults
        with self._lock:
            if self._rng_for is not faults:
                self._rng, self._rng_for = random.Random(faults.seed), faults
            if faults.fail_rate <= 0.0 or self._rng.random() >= faults.fail_rate:
                return faults, None
            return faults, self._rng.choice(faults.kinds)

    def _handle_one(self, conn: socket.socket, rfile: BinaryIO) -> bool:
        """Read one request and answer (or break) it; True when the connection may carry another."""
        head = _read_head(rfile)
        if head is None:
            return False
        start, headers = head
        parts = start.split(" ")
        if len(parts) != 3 or not all(parts) or not parts[2].startswith("HTTP/1."):
            raise _BadMessage(f"bad request line {start!r}")
        method, target, version = parts
        tokens = _connection_tokens(headers)
        keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
        if (_get(headers, "expect") or "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        rate, length = self.faults.put_rate, _get(headers, "content-length")
        if rate > 0 and method == "PUT" and length is not None and length.isdigit():
            body = self._read_slowly(rfile, int(length), rate)
        else:
            body = _read_body(rfile, headers, until_eof=False)

        faults, kind = self._pick()
        self._count("requests")
        if method in faults.stall:
            self._count("stalled")
            while method in self.faults.stall:
                if self._stopping.wait(0.05) or self._down:
                    return False
        if faults.delay > 0 and self._stopping.wait(faults.delay):
            return False
        if kind is not None:
            self._count(kind)
        if kind in ("drop", "reset"):
            if kind == "reset":  # linger 0: close() sends RST instead of FIN
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if kind in ("500", "429", "503"):
            extra = [("Retry-After", str(max(math.ceil(faults.retry_after), 0)))] if kind == "429" else []
            conn.sendall(self._error(int(kind), "injected", keep_alive, extra))
            return keep_alive

        forward = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP and k.lower() not in tokens]
        try:
            response = self._forward(f"{method} {target} HTTP/1.1", forward, body, head_only=method == "HEAD")
        except (OSError, _Closed, _BadMessage) as exc:
            if self._stopping.is_set() or self._down:
                return False
            self._count("bad_gateway")
            conn.sendall(self._error(502, f"upstream failed: {exc!r}", keep_alive))
            return keep_alive
        if kind == "drop_after_forward":  # the server applied it, the client will never know
            return False
        self._count("forwarded")
        code, reason, resp_headers, resp_body = response
        resp_headers.append(("Connection", "keep-alive" if keep_alive else "close"))
        conn.sendall(_serialize(f"HTTP/1.1 {code} {reason}".rstrip(), resp_headers, resp_body))
        return keep_alive

    def _read_slowly(self, rfile: BinaryIO, size: int, rate: float) -> bytes:
        """A body of size bytes read at rate bytes a second (the client's sends block meanwhile)."""
        parts, got = [], 0
        while got < size:
            part = rfile.read(min(64 << 10, size - got))
            if not part:
                raise _Closed("closed inside a body")
            parts.append(part)
            got += len(part)
            with self._lock:
                self.stats["slow_bytes"] += len(part)
            if self._stopping.wait(len(part) / rate) or self._down:
                raise _Closed("stopped inside a slow body")
        return b"".join(parts)

    def _forward(
        self, start: str, headers: Headers, body: bytes | None, *, head_only: bool
    ) -> tuple[int, str, Headers, bytes | None]:
        """Send one request on a fresh upstream connection and read the whole response."""
        upstream = socket.create_connection(self._upstream, timeout=_UPSTREAM_TIMEOUT)
        with self._lock:
            self._sockets.add(upstream)
        rfile = upstream.makefile("rb")
        try:
            upstream.sendall(_serialize(start, [*headers, ("Connection", "close")], body))
            while True:
                head = _read_head(rfile)
                if head is None:
                    raise _Closed("upstream closed without a response")
                status, resp_headers = head
                version, _, rest = status.partition(" ")
                code_text, _, reason = rest.partition(" ")
                if not version.startswith("HTTP/") or len(code_text) != 3 or not code_text.isdigit():
                    raise _BadMessage(f"bad status line {status!r}")
                if not 100 <= int(code_text) < 200:  # skip interim responses such as 100 Continue
                    break
            code = int(code_text)
            no_body = head_only or code in (204, 304)
            resp_body = None if no_body else _read_body(rfile, resp_headers, until_eof=True)
            kept = [
                (k, v)
                for k, v in resp_headers
                if k.lower() not in _HOP_BY_HOP or (no_body and k.lower() == "content-length")
            ]
            return code, reason, kept, resp_body
        finally:
            with self._lock:
                self._sockets.discard(upstream)
            rfile.close()
            upstream.close()

    @staticmethod
    def _error(code: int, message: str, keep_alive: bool, extra: Headers | None = None) -> bytes:
        """A small JSON error shaped like the tracking server's GraphQL errors."""
        reason, error_code = _ERRORS[code]
        body = json.dumps({"errors": [{"message": message, "extensions": {"code": error_code}}]}).encode()
        headers = [("Content-Type", "application/json"), *(extra or [])]
        headers.append(("Connection", "keep-alive" if keep_alive else "close"))
        return _serialize(f"HTTP/1.1 {code} {reason}", headers, body)

"""The fault proxy is test infrastructure: if it mangles traffic, every outage test built on it lies."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.faultproxy import FaultProxy, Faults


class _Upstream(ThreadingHTTPServer):
    """Records every request it completes, so tests can tell 'never arrived' from 'applied'."""

    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs under the concurrency test: 1 s retransmits

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, str, bytes, dict[str, str]]] = []
        self.release = threading.Event()  # ends /slow early at teardown

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    """GET/HEAD describe the request in JSON, POST echoes its body; /chunked and /slow test framing, stop."""

    protocol_version = "HTTP/1.1"
    server: _Upstream

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _record(self, body: bytes) -> None:
        self.server.seen.append((self.command, self.path, body, dict(self.headers.items())))

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Upstream", "yes")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._record(b"")
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path == "/slow":
            self.server.release.wait(5)
        self._send(200, json.dumps({"path": self.path, "echo": self.headers.get("X-Echo")}).encode())

    do_HEAD = do_GET

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._record(body)
        self._send(201, body, "application/octet-stream")


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: _Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.url) as proxy:
        yield proxy


def test_forwards_get_and_post_over_one_keepalive_connection(proxy: FaultProxy, upstream: _Upstream) -> None:
    with requests.Session() as session:
        for i in range(25):
            got = session.get(f"{proxy.url}/item/{i}?q=1", headers={"X-Echo": f"e{i}"}, timeout=5)
            assert got.status_code == 200
            assert got.json() == {"path": f"/item/{i}?q=1", "echo": f"e{i}"}
            assert got.headers["X-Upstream"] == "yes"
            posted = session.post(f"{proxy.url}/post", data=b"body %d" % i, timeout=5)
            assert (posted.status_code, posted.content) == (201, b"body %d" % i)
    assert proxy.stats["connections"] == 1  # 50 requests, one client connection
    assert proxy.stats["forwarded"] == 50
    assert len(upstream.seen) == 50


def test_large_bodies_both_ways(proxy: FaultProxy, upstream: _Upstream) -> None:
    payload = os.urandom(5 * 1024 * 1024)
    got = requests.post(f"{proxy.url}/big", data=payload, timeout=10)
    assert got.status_code == 201
    assert got.content == payload
    assert upstream.seen[-1][2] == payload


def test_chunked_request_is_forwarded_with_content_length(proxy: FaultProxy, upstream: _Upstream) -> None:
    got = requests.post(f"{proxy.url}/gen", data=iter([b"abc", b"", b"defgh"]), timeout=5)
    assert (got.status_code, got.content) == (201, b"abcdefgh")
    headers = upstream.seen[-1][3]
    assert headers["Content-Length"] == "8"
    assert "Transfer-Encoding" not in headers


def test_chunked_response_and_head(proxy: FaultProxy) -> None:
    with requests.Session() as session:
        assert session.get(f"{proxy.url}/chunked", timeout=5).content == b"hello chunked world"
        head = session.head(f"{proxy.url}/x", timeout=5)
        assert head.status_code == 200
        assert int(head.headers["Content-Length"]) > 0  # the length a GET would have, with no body sent
        assert session.get(f"{proxy.url}/after-head", timeout=5).json()["path"] == "/after-head"


@pytest.mark.parametrize("kind", ["drop", "reset", "drop_after_forward"])
def test_connection_faults_raise_connection_error(kind: str, proxy: FaultProxy, upstream: _Upstream) -> None:
    proxy.faults = Faults(fail_rate=1.0, kinds=(kind,))
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{proxy.url}/apply", data=b"x", timeout=5)
    # Only drop_after_forward lets the request reach the server: the case that needs idempotency.
    assert [path for _, path, _, _ in upstream.seen] == (["/apply"] if kind == "drop_after_forward" else [])
    assert proxy.stats[kind] == 1


@pytest.mark.parametrize(("kind", "status"), [("500", 500), ("429", 429), ("503", 503)])
def test_status_faults(kind: str, status: int, proxy: FaultProxy, upstream: _Upstream) -> None:
    proxy.faults = Faults(fail_rate=1.0, kinds=(kind,), retry_after=0.2)
    with requests.Session() as session:
        for _ in range(2):  # an injected status keeps the connection usable
            got = session.get(f"{proxy.url}/x", timeout=5)
            assert got.status_code == status
            assert got.json()["errors"][0]["message"] == "injected"
            assert got.headers.get("Retry-After") == ("1" if kind == "429" else None)
    assert proxy.stats["connections"] == 1
    assert upstream.seen == []


def test_seeded_fail_rate_is_roughly_honoured_and_reproducible(upstream: _Upstream) -> None:
    def statuses() -> list[int]:
        faults = Faults(fail_rate=0.3, kinds=("503",), seed=7)
        with FaultProxy(upstream.url, faults) as proxy, requests.Session() as session:
            return [session.get(f"{proxy.url}/r", timeout=5).status_code for _ in range(200)]

    first = statuses()
    assert 30 <= first.count(503) <= 90
    assert set(first) == {200, 503}
    assert statuses() == first


def test_faults_can_change_while_running(proxy: FaultProxy) -> None:
    with requests.Session() as session:
        assert session.get(f"{proxy.url}/a", timeout=5).status_code == 200
        proxy.faults = Faults(fail_rate=1.0, kinds=("500",))
        assert session.get(f"{proxy.url}/a", timeout=5).status_code == 500
        proxy.faults.fail_rate = 0.0
        assert session.get(f"{proxy.url}/a", timeout=5).status_code == 200


def test_down_refuses_then_recovers(proxy: FaultProxy) -> None:
    with requests.Session() as session:
        assert session.get(f"{proxy.url}/a", timeout=5).status_code == 200
        proxy.down = True
        for _ in range(3):
            with pytest.raises(requests.ConnectionError):
                session.get(f"{proxy.url}/a", timeout=5)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{proxy.url}/a", timeout=5)
        proxy.down = False
        assert session.get(f"{proxy.url}/a", timeout=5).status_code == 200
    assert proxy.stats["refused"] >= 4


def test_unreachable_upstream_gives_502() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with FaultProxy(f"http://127.0.0.1:{port}") as proxy:
        got = requests.get(f"{proxy.url}/a", timeout=5)
    assert got.status_code == 502
    assert got.json()["errors"][0]["extensions"]["code"] == "BAD_GATEWAY"


def test_delay_adds_latency(proxy: FaultProxy) -> None:
    proxy.faults = Faults(delay=0.3)
    started = time.monotonic()
    assert requests.get(f"{proxy.url}/a", timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_stop_is_prompt_with_open_connections(upstream: _Upstream) -> None:
    proxy = FaultProxy(upstream.url).start()
    port = int(proxy.url.rsplit(":", 1)[1])
    idle = socket.create_connection(("127.0.0.1", port))
    partial = socket.create_connection(("127.0.0.1", port))
    partial.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    errors: list[BaseException] = []

    def in_flight() -> None:
        try:
            requests.get(f"{proxy.url}/slow", timeout=5)
        except requests.RequestException as exc:
            errors.append(exc)

    client = threading.Thread(target=in_flight)
    client.start()
    deadline = time.monotonic() + 2
    while not any(path == "/slow" for _, path, _, _ in upstream.seen) and time.monotonic() < deadline:
        time.sleep(0.01)  # /slow is recorded before it blocks, so the proxy is now waiting upstream
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 2
    client.join(timeout=2)
    assert len(errors) == 1 and isinstance(errors[0], requests.ConnectionError)
    for sock in (idle, partial):
        sock.settimeout(2)
        assert sock.recv(1) == b""  # the proxy closed it
        sock.close()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{proxy.url}/a", timeout=2)


def test_many_concurrent_connections(proxy: FaultProxy, upstream: _Upstream) -> None:
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with requests.Session() as session:
                for i in range(10):
                    got = session.post(f"{proxy.url}/c", data=b"%d-%d" % (n, i), timeout=5)
                    assert got.content == b"%d-%d" % (n, i)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert failures == []
    assert len(upstream.seen) == 200
    assert proxy.stats["connections"] == 20


def test_malformed_request_gets_400(proxy: FaultProxy) -> None:
    port = int(proxy.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")
        assert sock.recv(1) == b""

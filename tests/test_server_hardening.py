"""Server hardening: rate limits, slow clients, size limits, GraphQL cost, secrets kept out of logs.

Every test runs a real `nbtrack server` on a loopback port, configured with small limits so
each one is cheap to hit. Times are only ever bounded generously (a stalled client must be
let go within many times its configured timeout), never measured.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
import requests
from graphql import GraphQLInputObjectType, GraphQLObjectType, get_named_type, parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbtrack
from nbtrack.online import reader, server_run
from nbtrack.server.errors import CODES
from nbtrack.server.graphql_cost import MAX_COST, MAX_QUERY_CHARS, MAX_SAME_FIELD, MAX_SELECTIONS, query_cost
from nbtrack.server.graphql_schema import schema
from nbtrack.server.limits import MAX_BUCKETS, RateLimiter, address_of
from tests import serving
from tests.serving import (
    FILE_BACKENDS,
    POSTGRES_URL,
    Client,
    ServerProcess,
    create_key,
    files_on,
    start_server,
    unique_name,
)

pytestmark = pytest.mark.timeout(300)
server = serving.server  # the fixture, made this module's (an import would shadow test parameters)

REPO = Path(__file__).resolve().parent.parent
BODY_TIMEOUT = 2  # seconds, for the slow-client tests
LET_GO_WITHIN = 30  # seconds: a stalled client is let go well within this


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Servers a test starts (through serve()), stopped after it."""
    servers: list[ServerProcess] = []
    yield servers
    for server in servers:
        server.stop()


def serve(started: list[ServerProcess], tmp_path: Path, *args: str) -> ServerProcess:
    server = start_server(tmp_path, extra_args=list(args))
    started.append(server)
    return server


def assert_error_shape(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["errors"] and all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    assert body["errors"][0]["extensions"]["code"] == code
    return body


def raw_http(url: str) -> socket.socket:
    host, _, port = url.removeprefix("http://").partition(":")
    return socket.create_connection((host, int(port)), timeout=LET_GO_WITHIN)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket timeout: LET_GO_WITHIN)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def upload_url(client: Client, name: str) -> str:
    """A signed URL to upload run p/r's file name to."""
    query = """mutation ($f: [String!]!) {
        createRunFiles(input: {project: "p", run: "r", files: $f}) { files { uploadUrl } }
    }"""
    url: str = client.data(query, f=[name])["createRunFiles"]["files"][0]["uploadUrl"]
    return url


def post_head(path: str, length: int) -> bytes:
    """A POST request's head announcing a JSON body of length bytes."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


# ---- rate limits ---------------------------------------------------------------------------


def test_over_the_rate_limit_is_429_in_the_error_shape_with_retry_after(
    started: list[ServerProcess], tmp_path: Path
) -> None:
    server = serve(started, tmp_path, "--rate-limit", "0.5", "--rate-burst", "3")
    client = Client(server.url)
    answers = [client.graphql("{ viewer { entity } }") for _ in range(6)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    limited = [a for a in answers if a.status_code == 429]
    assert limited
    for answer in limited:
        message = assert_error_shape(answer, 429, "RATE_LIMITED")["errors"][0]["message"]
        assert "0.5 a second" in message
        assert re.fullmatch(r"[1-9][0-9]*", answer.headers["Retry-After"])
        assert int(answer.headers["Retry-After"]) <= 2  # one token at 0.5 a second


def test_each_entity_has_its_own_budget_and_wrong_keys_are_charged_to_the_address(
    started: list[ServerProcess], tmp_path: Path
) -> None:
    server = serve(started, tmp_path, "--rate-limit", "0.1", "--rate-burst", "2")
    alice = Client(server.url, "alice", create_key(server, "alice"))
    bob = Client(server.url, "bob", create_key(server, "bob"))
    statuses = [alice.graphql("{ viewer { entity } }").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert bob.data("{ viewer { entity } }") == {"viewer": {"entity": "bob"}}
    # Guessing keys spends the address's budget, not alice's or bob's: guessing is throttled.
    guesser = Client(server.url, "alice", "nbt_" + "0" * 40)
    guesses = [guesser.graphql("{ viewer { entity } }") for _ in range(3)]
    assert [g.status_code for g in guesses] == [401, 401, 429]
    assert bob.graphql("{ viewer { entity } }").status_code == 200


def test_pages_static_files_and_health_checks_are_not_charged(
    started: list[ServerProcess], tmp_path: Path
) -> None:
    server = serve(started, tmp_path, "--rate-limit", "0.1", "--rate-burst", "1")
    client = Client(server.url)
    assert client.graphql("{ viewer { entity } }").status_code == 200
    assert client.graphql("{ viewer { entity } }").status_code == 429
    for path in ["/", "/local/p", "/local/p/runs/r", "/static/ui/app.js", "/healthz"] * 3:
        assert requests.get(f"{server.url}{path}", timeout=10).status_code == 200, path
    # Run files are charged: they read the disk for a caller.
    assert_error_shape(requests.get(f"{server.url}/files/local/p/r/a.txt", timeout=10), 429, "RATE_LIMITED")


def test_rate_limit_zero_is_off(started: list[ServerProcess], tmp_path: Path) -> None:
    server = serve(started, tmp_path, "--rate-limit", "0", "--rate-burst", "1")
    client = Client(server.url)
    assert {client.graphql("{ viewer { entity } }").status_code for _ in range(30)} == {200}


def test_a_run_logging_against_a_tiny_limit_stores_every_row(
    started: list[ServerProcess], tmp_path: Path
) -> None:
    server = serve(started, tmp_path, "--rate-limit", "2", "--rate-burst", "2", "--log-level", "info")
    rows = 3000
    run = nbtrack.init(base_url=server.url, project="limited", config={"lr": 0.1})
    for i in range(rows):
        run.log({"x": i})
        if i % 300 == 0:
            time.sleep(0.2)  # spread the rows over many posts
    run.summary["best"] = 1
    run.finish(timeout=180)
    assert run.state == "finished"
    stored = nbtrack.Api(base_url=server.url).run(f"limited/{run.id}")
    assert stored.state == "finished" and stored.summary["best"] == 1
    history = stored.history()
    assert [row["x"] for row in history] == list(range(rows))
    assert [row["_step"] for row in history] == list(range(rows))
    assert "rate limited address:127.0.0.1" in server.log()  # the limit was hit, and waited out


@pytest.mark.parametrize(
    ("option", "value"),
    [("--rate-limit", "-1"), ("--rate-limit", "nan"), ("--rate-burst", "0.5"), ("--body-timeout", "0")],
)
def test_bad_limit_options_are_refused_naming_the_option(tmp_path: Path, option: str, value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", "server", "--dir", str(tmp_path / "root"), option, value],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and option in result.stderr and result.stdout == ""


def test_a_bucket_refills_at_its_rate_and_the_table_stays_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=2.0, clock=lambda: now[0])
    assert [limiter.wait("a"), limiter.wait("a")] == [0.0, 0.0]
    assert limiter.wait("a") == pytest.approx(0.5)  # one token at 2 a second
    assert limiter.wait("b") == 0.0  # another caller's bucket is full
    now[0] += 0.5
    assert limiter.wait("a") == 0.0
    for i in range(MAX_BUCKETS + 10):
        limiter.wait(f"address:{i}")
    assert len(limiter._buckets) == MAX_BUCKETS


def test_ipv6_callers_are_charged_by_their_64() -> None:
    def scope(host: str) -> dict[str, Any]:
        return {"client": (host, 1234)}

    assert (
        address_of(scope("2001:db8:1:2::1"))
        == address_of(scope("2001:db8:1:2:ffff::9"))
        == "2001:db8:1:2::/64"
    )
    assert address_of(scope("2001:db8:1:3::1")) != address_of(scope("2001:db8:1:2::1"))
    assert address_of(scope("127.0.0.1")) == "127.0.0.1"


# ---- slow clients --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/graphql", "/files/local/p/r/file_stream"])
def test_a_body_that_stalls_is_answered_408_while_others_are_served(
    started: list[ServerProcess], tmp_path: Path, path: str
) -> None:
    server = serve(started, tmp_path, "--body-timeout", str(BODY_TIMEOUT))
    client = Client(server.url)
    client.upsert("p", "r")
    with raw_http(server.url) as sock:
        sock.sendall(post_head(path, 1000) + b'{"query": "{ viewer')
        started_at = time.monotonic()
        served = 0
        while time.monotonic() - started_at < BODY_TIMEOUT / 2:  # the stalled request holds nothing
            assert client.data("{ viewer { entity } }") == {"viewer": {"entity": "local"}}
            served += 1
        status, headers, body = parse_response(read_until_closed(sock))
    assert served >= 1
    assert status == 408 and headers["connection"] == "close"
    assert b'"code":"REQUEST_TIMEOUT"' in body
    assert time.monotonic() - started_at < LET_GO_WITHIN


def test_a_trickling_body_is_answered_408(started: list[ServerProcess], tmp_path: Path) -> None:
    server = serve(started, tmp_path, "--body-timeout", str(BODY_TIMEOUT))
    with raw_http(server.url) as sock:
        sock.sendall(post_head("/graphql", 100_000))
        started_at = time.monotonic()
        answer = b""
        sock.settimeout(0.3)
        while not answer and time.monotonic() - started_at < LET_GO_WITHIN:
            try:
                sock.sendall(b" ")  # a byte well within every chunk's timeout, far below any real rate
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
    assert parse_response(answer)[0] == 408, answer


@pytest.mark.parametrize("backend", FILE_BACKENDS)
def test_a_stalled_upload_leaves_no_partial_file(
    started: list[ServerProcess], tmp_path: Path, backend: str
) -> None:
    server = start_server(tmp_path, files=files_on(backend), extra_args=["--body-timeout", str(BODY_TIMEOUT)])
    started.append(server)
    client = Client(server.url)
    client.upsert("p", "r")
    url = upload_url(client, "m.bin")
    with raw_http(server.url) as sock:
        target = url.removeprefix(server.url)
        sock.sendall(
            f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n\r\n".encode() + b"x" * 100
        )
        status, _, body = parse_response(read_until_closed(sock))
    assert status == 408 and b"REQUEST_TIMEOUT" in body
    assert server.stored_files() == []
    assert client.run("p", "r", "files { name }") == {"files": []}


def test_a_stalled_request_head_is_closed(started: list[ServerProcess], tmp_path: Path) -> None:
    server = serve(started, tmp_path, "--body-timeout", str(BODY_TIMEOUT))
    with raw_http(server.url) as sock:
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest of the head
        started_at = time.monotonic()
        assert read_until_closed(sock) == b""
    assert time.monotonic() - started_at < LET_GO_WITHIN


def test_a_body_refused_unread_does_not_keep_the_connection(
    started: list[ServerProcess], tmp_path: Path
) -> None:
    server = serve(started, tmp_path, "--body-timeout", str(BODY_TIMEOUT))
    with raw_http(server.url) as sock:
        # No token: refused before a byte of the body is read; the rest is never waited for.
        sock.sendall(
            b"PUT /files/local/p/r/a.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n\r\nxx"
        )
        status, _, body = parse_response(read_until_closed(sock))
    assert status == 401 and b"UNAUTHENTICATED" in body


@pytest.mark.parametrize(
    "parts",
    [
        [b"NOT HTTP AT ALL\r\n\r\n"],
        [b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20_000, b"\r\n\r\n"],
    ],
    ids=["malformed", "head over 16 KiB"],
)
def test_requests_uvicorn_refuses_are_answered_in_the_error_shape(
    server: ServerProcess, parts: list[bytes]
) -> None:
    with raw_http(server.url) as sock:
        for part in parts:
            sock.sendall(part)
            time.sleep(0.2)  # the head arrives in pieces: h11 holds at most 16 KiB of an unfinished one
        status, headers, body = parse_response(read_until_closed(sock))
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body)["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


# ---- host names and request framing --------------------------------------------------------

# Names a DNS-rebinding page could put in Host (its own name, made to resolve to 127.0.0.1), and
# other names that are not this machine's loopback.
FOREIGN_HOSTS = [
    "evil.example.com",
    "evil.example.com:{port}",
    "localhost.evil.example.com:{port}",  # a loopback name at the front of a foreign one
    "127.0.0.1.nip.io:{port}",
    "0.0.0.0:{port}",  # browsers send a page's requests for 0.0.0.0 to this machine
    "10.0.0.1",
    "[::2]:{port}",
    "[::ffff:10.0.0.1]",
    "127.1",  # a shorthand some resolvers take for 127.0.0.1, but not a loopback *name*
]
LOOPBACK_HOSTS = [
    "127.0.0.1:{port}",  # nbtrack's client, W&B's and the web UI, from http://127.0.0.1:PORT
    "localhost:{port}",
    "127.0.0.1",
    "LocalHost",
    "localhost.",
    "ui.localhost:{port}",
    "127.8.9.10:{port}",
    "[::1]:{port}",
    "[::ffff:127.0.0.1]",
]
GRAPHQL_VIEWER = {"query": "{ viewer { entity } }"}


def port_of(server: ServerProcess) -> int:
    return int(server.url.rpartition(":")[2])


def as_host(server: ServerProcess, host: str) -> dict[str, str]:
    """Headers naming host (with "{port}" the server's port) as the request's Host."""
    return {"Host": host.format(port=port_of(server))}


def test_a_request_naming_a_foreign_host_is_refused(server: ServerProcess) -> None:
    """DNS rebinding: a page whose own name resolves to 127.0.0.1 can neither read nor change runs."""
    loopback = Client(server.url)
    loopback.upsert("p", "r")
    post = {"files": {"wandb-history.jsonl": {"offset": 0, "content": ['{"_step": 0, "x": 1}']}}}
    create = {"query": 'mutation { upsertBucket(input: {name: "evil", project: "evil"}) { inserted } }'}
    for host in FOREIGN_HOSTS:
        headers = as_host(server, host)
        answers = [
            requests.post(f"{server.url}/graphql", json=GRAPHQL_VIEWER, headers=headers, timeout=10),
            requests.post(f"{server.url}/graphql", json=create, headers=headers, timeout=10),
            requests.post(
                f"{server.url}/files/local/p/r/file_stream", json=post, headers=headers, timeout=10
            ),
            requests.get(f"{server.url}/files/local/p/r/a.txt", headers=headers, timeout=10),
            requests.get(f"{server.url}/", headers=headers, timeout=10),
            requests.get(f"{server.url}/static/ui/app.js", headers=headers, timeout=10),
        ]
        for answer in answers:
            message = assert_error_shape(answer, 400, "BAD_REQUEST")["errors"][0]["message"]
            assert headers["Host"] in message, message  # the culprit, named
            assert "--allowed-host" in message
    assert loopback.run("evil", "evil", "name") is None
    assert loopback.run("p", "r", "historyLineCount") == {"historyLineCount": 0}
    # With a key it is the same: the check does not depend on who asks.
    alice = Client(server.url, "alice", create_key(server, "alice"))
    evil = alice.session.post(
        f"{server.url}/graphql", json=GRAPHQL_VIEWER, headers=as_host(server, "evil.example.com"), timeout=10
    )
    assert_error_shape(evil, 400, "BAD_REQUEST")
    assert alice.data("{ viewer { entity } }") == {"viewer": {"entity": "alice"}}


def test_loopback_host_names_are_served(server: ServerProcess) -> None:
    for host in LOOPBACK_HOSTS:
        headers = as_host(server, host)
        answer = requests.post(f"{server.url}/graphql", json=GRAPHQL_VIEWER, headers=headers, timeout=10)
        assert answer.status_code == 200, (host, answer.text)
        assert answer.json() == {"data": {"viewer": {"entity": "local"}}}
        assert requests.get(f"{server.url}/local/p", headers=headers, timeout=10).status_code == 200
    # nbtrack's own client (Host: 127.0.0.1:PORT), and through the name localhost.
    client = Client(server.url)
    client.upsert("hosts", "r")
    assert (
        client.stream(
            "hosts",
            "r",
            {"files": {"wandb-history.jsonl": {"offset": 0, "content": ['{"_step": 0, "x": 1}']}}},
        ).status_code
        == 200
    )
    for base_url in (server.url, server.url.replace("127.0.0.1", "localhost")):
        assert [row["x"] for row in nbtrack.Api(base_url=base_url).run("hosts/r").history()] == [1]


def test_an_allowed_host_is_served_and_others_are_still_refused(
    started: list[ServerProcess], tmp_path: Path
) -> None:
    server = serve(
        started, tmp_path, "--allowed-host", "nbtrack.example.com", "--allowed-host", "[2001:db8::1]"
    )
    for host in [
        "nbtrack.example.com",
        "NBTRACK.example.com.:443",
        "[2001:db8::1]:{port}",
        "localhost:{port}",
    ]:
        answer = requests.post(
            f"{server.url}/graphql", json=GRAPHQL_VIEWER, headers=as_host(server, host), timeout=10
        )
        assert answer.status_code == 200, (host, answer.text)
    for host in ["evil.example.com", "sub.nbtrack.example.com", "example.com", "[2001:db8::2]"]:
        answer = requests.post(
            f"{server.url}/graphql", json=GRAPHQL_VIEWER, headers=as_host(server, host), timeout=10
        )
        assert_error_shape(answer, 400, "BAD_REQUEST")


def test_a_page_of_another_origin_cannot_change_runs(server: ServerProcess) -> None:
    """Cross-site request forgery: a page elsewhere can make the browser send a body without a
    type (a "simple" request) to the right name; the browser adds its Origin, which is refused for
    anything that could change a run. The web UI (same origin) and clients without Origin work."""
    create = 'mutation { upsertBucket(input: {name: "forged", project: "csrf"}) { inserted } }'
    body = orjson.dumps({"query": create})
    own = server.url.replace("http://", "")
    for origin in ["http://evil.example.com", "null", f"http://localhost:{port_of(server) + 1}"]:
        answer = requests.post(
            f"{server.url}/graphql", data=body, headers={"Origin": origin, "Host": own}, timeout=10
        )
        message = assert_error_shape(answer, 400, "BAD_REQUEST")["errors"][0]["message"]
        assert origin in message and "another origin" in message
    assert Client(server.url).run("csrf", "forged", "name") is None
    # Reading from another origin is the browser's to stop (the answer has no CORS headers).
    viewer = requests.post(
        f"{server.url}/graphql",
        json=GRAPHQL_VIEWER,
        headers={"Origin": "http://evil.example.com"},
        timeout=10,
    )
    assert_error_shape(viewer, 400, "BAD_REQUEST")  # a POST all the same
    page = requests.get(f"{server.url}/", headers={"Origin": "http://evil.example.com"}, timeout=10)
    assert page.status_code == 200 and "access-control-allow-origin" not in page.headers
    # The web UI sends its own origin; nbtrack's and W&B's clients send none.
    same = requests.post(
        f"{server.url}/graphql", data=body, headers={"Origin": server.url, "Host": own}, timeout=10
    )
    assert same.status_code == 200, same.text
    assert Client(server.url).run("csrf", "forged", "name") == {"name": "forged"}


def test_health_checks_are_answered_whatever_the_host(server: ServerProcess) -> None:
    # A load balancer's probe names the backend however it was configured (an address, a pool's
    # name), or sends no Host at all over HTTP/1.0; the answer says nothing about any run.
    for host in ["evil.example.com", "10.0.0.5:8080", "backend-pool"]:
        answer = requests.get(f"{server.url}/healthz", headers={"Host": host}, timeout=10)
        assert answer.status_code == 200 and answer.json() == {"ok": True}
    with raw_http(server.url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        status, _, body = parse_response(read_until_closed(sock))
    assert status == 200 and json.loads(body) == {"ok": True}
    # Anything else without a Host to check is refused.
    with raw_http(server.url) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        status, headers, body = parse_response(read_until_closed(sock))
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body)["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    "value", ["", "nbtrack.example.com:8080", "http://nbtrack.example.com", "*", "a b", "[::1"]
)
def test_a_bad_allowed_host_is_refused_naming_the_option(tmp_path: Path, value: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbtrack.cli",
            "server",
            "--dir",
            str(tmp_path / "root"),
            "--allowed-host",
            value,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "--allowed-host" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("framing_first", ["Content-Length", "Transfer-Encoding"])
def test_a_request_with_both_content_length_and_transfer_encoding_is_refused_and_closed(
    server: ServerProcess, framing_first: str
) -> None:
    """RFC 9112 §6.1: the two framings could tell a proxy and this server apart where one request
    ends (request smuggling), so such a request is refused and its connection closed."""
    body = json.dumps(GRAPHQL_VIEWER).encode()
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    framing = [b"Content-Length: 5", b"Transfer-Encoding: chunked"]
    if framing_first == "Transfer-Encoding":
        framing.reverse()
    head = b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with raw_http(server.url) as sock:
        sock.sendall(head + b"\r\n".join(framing) + b"\r\n\r\n" + chunked + smuggled)
        raw = read_until_closed(sock)  # returns once recv() gives b"": the server closed the connection
    assert raw.count(b"HTTP/1.1 ") == 1, raw  # what followed was never read as a request of its own
    status, headers, answer = parse_response(raw)
    assert status == 400 and headers["connection"] == "close", raw
    assert headers["content-type"] == "application/json"
    error = json.loads(answer)["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "Content-Length" in error["message"] and "Transfer-Encoding" in error["message"]
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200  # others are served


# ---- size limits ---------------------------------------------------------------------------

MAX_BODY = 4096


@pytest.mark.parametrize("what", ["graphql", "file_stream", "upload", "upload to s3"])
def test_every_body_is_bounded_even_chunked_without_a_length(
    started: list[ServerProcess], tmp_path: Path, what: str
) -> None:
    limits = ["--max-body", str(MAX_BODY), "--max-upload", str(MAX_BODY)]
    files = files_on("s3") if what == "upload to s3" else None
    server = start_server(tmp_path, files=files, extra_args=limits)
    started.append(server)
    what = what.removesuffix(" to s3")
    client = Client(server.url)
    client.upsert("p", "r")
    url = {
        "graphql": f"{server.url}/graphql",
        "file_stream": f"{server.url}/files/local/p/r/file_stream",
        "upload": upload_url(client, "a.bin"),
    }[what]
    chunks = iter([b'{"query": "', b"x" * MAX_BODY, b'"}'])  # a generator: sent chunked
    method = "PUT" if what == "upload" else "POST"
    response = requests.request(
        method, url, data=chunks, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert_error_shape(response, 413, "PAYLOAD_TOO_LARGE")


# ---- GraphQL limits ------------------------------------------------------------------------


def graphql_refused(client: Client, query: str, **variables: Any) -> str:
    """The message of a query refused 400 BAD_REQUEST."""
    message: str = assert_error_shape(client.graphql(query, **variables), 400, "BAD_REQUEST")["errors"][0][
        "message"
    ]
    return message


def test_a_query_over_the_cost_limit_is_refused_naming_the_limit(server_for_graphql: Client) -> None:
    client = server_for_graphql
    assert str(MAX_COST) in graphql_refused(client, '{ project(name: "p") { runs(first: 100000) { name } } }')
    query = "query ($n: Int) { project(name: $p) { runs(first: $n) { name } } }".replace("$p", '"p"')
    assert str(MAX_COST) in graphql_refused(client, query, n=1_000_000)
    # Unbounded runs within runs multiply too.
    nested = '{ project(name: "p") { runs { project { runs { name } } } } }'
    assert str(MAX_COST) in graphql_refused(client, nested)
    assert client.data('{ project(name: "p") { runs(first: 10) { name history } } }')


def test_aliases_cannot_repeat_a_field_past_the_limit(server_for_graphql: Client) -> None:
    client = server_for_graphql
    aliased = " ".join(f"a{i}: run(name: $r) {{ history }}" for i in range(MAX_SAME_FIELD + 1))
    query = f'query ($r: String!) {{ project(name: "p") {{ {aliased} }} }}'
    assert "aliases included" in graphql_refused(client, query, r="r")
    assert str(MAX_SAME_FIELD) in graphql_refused(
        client, "{ viewer { " + "id " * (MAX_SAME_FIELD + 1) + "} }"
    )
    fewer = " ".join(f"a{i}: run(name: $r) {{ name }}" for i in range(MAX_SAME_FIELD))
    assert client.data(f'query ($r: String!) {{ project(name: "p") {{ {fewer} }} }}', r="r")


def test_query_text_and_selections_are_bounded(server_for_graphql: Client) -> None:
    client = server_for_graphql
    long_query = "{ viewer { id } }" + " " * MAX_QUERY_CHARS
    assert str(MAX_QUERY_CHARS) in graphql_refused(client, long_query)
    # Distinct names, so only the count of selections is over: fragments each selecting a few fields.
    fragments = "".join(
        f"fragment F{i} on User {{ id username entity }}\n" for i in range(MAX_SELECTIONS // 3 + 1)
    )
    spreads = " ".join(f"...F{i}" for i in range(MAX_SELECTIONS // 3 + 1))
    assert str(MAX_SELECTIONS) in graphql_refused(client, f"{{ viewer {{ {spreads} }} }}\n{fragments}")


def test_a_fragment_bomb_is_refused_at_once(server_for_graphql: Client) -> None:
    client = server_for_graphql
    fragments = "".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} ...F{i + 1} }}\n" for i in range(40)
    )
    started_at = time.monotonic()
    message = graphql_refused(client, "{ ...F0 }\n" + fragments + "fragment F40 on Query { viewer { id } }")
    assert str(MAX_COST) in message
    assert time.monotonic() - started_at < LET_GO_WITHIN


@pytest.fixture
def server_for_graphql(server: ServerProcess) -> Client:
    client = Client(server.url)
    client.upsert("p", "r")
    return client


def nbtracks_own_queries() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every query nbtrack's clients send, with the largest variables they send it with."""
    queries: dict[str, tuple[str, dict[str, Any]]] = {
        name: (getattr(reader, name), {"limit": 10_000})
        for name in ["PROJECTS", "RUNS", "RUN", "HISTORY", "OUTPUT", "EVENTS"]
    }
    queries["UPSERT_BUCKET"] = (server_run.UPSERT_BUCKET, {})
    queries["CREATE_RUN_FILES"] = (server_run.CREATE_RUN_FILES, {})
    js = (REPO / "nbtrack" / "web" / "ui" / "queries.js").read_text()
    run_fields = re.search(r"const RUN_FIELDS = `(.*?)`;", js, re.S)
    assert run_fields is not None
    ui_variables = {"first": 1000, "outputLimit": 2000, "limit": 2000}
    for match in re.finditer(r"export const (\w+) = `(.*?)`;", js, re.S):
        if "query" in match.group(2):
            queries[f"ui {match.group(1)}"] = (
                match.group(2).replace("${RUN_FIELDS}", run_fields.group(1)),
                ui_variables,
            )
    fields = run_fields.group(1) + " chart(x: $x, minX: $minX, maxX: $maxX)"
    runs = " ".join(f"r{i}: run(name: $r{i}) {{ {fields} }}" for i in range(10))  # compare.js: MAX_RUNS = 10
    queries["ui compare"] = (
        f'query ($x: String, $minX: Float, $maxX: Float) {{ project(name: "p") {{ {runs} }} }}',
        {},
    )
    return queries


@pytest.mark.parametrize("name", sorted(nbtracks_own_queries()))
def test_nbtracks_own_queries_are_well_within_the_limits(name: str) -> None:
    query, variables = nbtracks_own_queries()[name]
    assert len(query) < MAX_QUERY_CHARS // 4
    assert query_cost(schema(), parse(query), None, variables) < MAX_COST // 2


# ---- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_no_key_or_upload_token_reaches_a_debug_log(
    started: list[ServerProcess], tmp_path: Path, database: str
) -> None:
    if database == "postgresql" and not POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server on PostgreSQL")
    server = start_server(
        tmp_path,
        db_url=POSTGRES_URL if database == "postgresql" else None,
        extra_args=["--log-level", "debug"],
    )
    started.append(server)
    entity = unique_name("alice")  # the PostgreSQL database is shared: an entity of this test's own
    key = create_key(server, entity)
    alice = Client(server.url, entity, key)
    alice.upsert("p", "r", config='{"lr": {"value": 0.1}}')
    post = {"files": {"wandb-history.jsonl": {"offset": 0, "content": ['{"_step": 0, "x": 1}']}}}
    assert alice.stream("p", "r", post).status_code == 200
    url = upload_url(alice, "a.txt")
    token = url.partition("?token=")[2]
    assert requests.put(url, data=b"hello", timeout=10).status_code == 200
    tampered = token[:-1] + ("1" if token.endswith("0") else "0")  # never the token itself
    assert requests.put(url.replace(token, tampered), data=b"x", timeout=10).status_code == 401
    assert alice.session.get(f"{server.url}/files/{entity}/p/r/a.txt", timeout=10).content == b"hello"
    wrong = "nbt_" + "1" * 40
    assert Client(server.url, entity, wrong).graphql("{ viewer { entity } }").status_code == 401
    server.stop()
    log = server.log()
    assert " DEBUG " in log  # the level was on
    secrets = [key, wrong, token, base64.b64encode(f"api:{key}".encode()).decode()]
    for secret in secrets:
        assert secret not in log
    assert "sqlalchemy" not in log  # statements' parameters hold key hashes and the signing secret


def test_sql_is_never_built_from_values_at_a_call_site() -> None:
    """No SQL execution call in nbtrack/ is given text formatted where it is called (but from
    module constants): values are bound.

    (Upserts._upsert_sql and _unnest_sql in store/upsert.py build statements from the schema's
    table and column names only, and bind every value.)
    """
    offenders = []
    for path in (REPO / "nbtrack").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name not in ("text", "exec_driver_sql", "execute", "executescript"):
                continue
            first = node.args[0]
            formatted = isinstance(first, ast.JoinedStr | ast.BinOp) or (
                isinstance(first, ast.Call) and getattr(first.func, "attr", "") == "format"
            )
            if formatted and not _only_constants(first):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


def _only_constants(node: ast.expr) -> bool:
    """True for an f-string that only interpolates module constants (PRAGMA busy_timeout={MS})."""
    return isinstance(node, ast.JoinedStr) and all(
        isinstance(part, ast.Constant)
        or (
            isinstance(part, ast.FormattedValue)
            and isinstance(part.value, ast.Name)
            and part.value.id.isupper()
        )
        for part in node.values
    )


# ---- fuzz: whatever arrives, never a 5xx, and every 4xx in the error shape ---------------

FUZZ_MAX_BODY = 4096


@pytest.fixture(scope="module", params=FILE_BACKENDS)
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server with every limit small but the rate (tested above), so requests reach the handlers;
    its run files in a folder or in the S3 bucket."""
    served = start_server(
        tmp_path_factory.mktemp("fuzz"),
        files=files_on(request.param),
        extra_args=[
            "--max-body",
            str(FUZZ_MAX_BODY),
            "--max-upload",
            str(FUZZ_MAX_BODY),
            "--rate-limit",
            "0",
            "--body-timeout",
            "5",
        ],
    )
    Client(served.url).upsert("fuzz", "r")
    yield served
    served.stop()
    assert "Traceback" not in served.log(), served.log_tail()


SEGMENTS = st.sampled_from(
    ["local", "fuzz", "r", "..", "%2E%2E", "a%20b", "x" * 300, "%00", "~uploads"]
) | st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12).map(
    lambda text: quote(text, safe="")
)
PATHS = st.one_of(
    st.sampled_from(["/graphql", "/healthz", "/", "/static/ui/app.js", "/files", "/files/local"]),
    st.builds("/files/{}/{}/{}/file_stream".format, SEGMENTS, SEGMENTS, SEGMENTS),
    st.builds("/files/{}/{}/{}/{}".format, SEGMENTS, SEGMENTS, SEGMENTS, SEGMENTS),
    st.builds("/static/{}".format, SEGMENTS),
    st.builds("/{}/{}".format, SEGMENTS, SEGMENTS),
    st.builds("/{}/{}/runs/{}".format, SEGMENTS, SEGMENTS, SEGMENTS),
    st.builds("/{}/{}/compare".format, SEGMENTS, SEGMENTS),
    st.lists(SEGMENTS, max_size=6).map(lambda parts: "/" + "/".join(parts)),
)
QUERY_STRINGS = st.sampled_from(
    ["", "?token=", "?token=1.a", "?token=99999999999.ab", "?runs=a,b"]
) | st.text(max_size=10).map(lambda text: "?token=" + quote(text, safe=""))
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.strip)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(
            [
                "application/json",
                "application/json; charset=utf-8",
                "text/plain",
                "application/x-www-form-urlencoded",
                "",
            ]
        )
        | HEADER_TEXT,
        "Authorization": st.sampled_from(
            ["Basic", "Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"api:").decode()]
        )
        | st.binary(max_size=30).map(lambda raw: "Basic " + base64.b64encode(raw).decode())
        | HEADER_TEXT,
        "X-Nbtrack-Client": st.just("ui"),
        "If-None-Match": HEADER_TEXT,
        "Accept-Encoding": st.sampled_from(["gzip", "identity", "br"]),
    },
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)


def _arg_values(type_: Any, depth: int = 0) -> st.SearchStrategy[str]:
    """GraphQL literals roughly of type_ (and sometimes not)."""
    named = get_named_type(type_)
    junk = st.sampled_from(["null", "true", "1.5", '""', "[]", "{}", "$v"])
    if isinstance(named, GraphQLInputObjectType) and depth < 2:
        fields = sorted(named.fields)
        entries = st.lists(
            st.sampled_from(fields).flatmap(
                lambda f: _arg_values(named.fields[f].type, depth + 1).map(lambda v: f"{f}: {v}")
            ),
            max_size=5,
        )
        return entries.map(lambda parts: "{" + ", ".join(parts) + "}") | junk
    numbers = st.integers(-(2**40), 2**40).map(str) | st.sampled_from(
        ["0", "1", "1000", "100000", "2147483647"]
    )
    strings = st.text(max_size=8).map(json.dumps) | st.sampled_from(
        ['"fuzz"', '"r"', '"_step"', '"{\\"a\\": 1}"']
    )
    items = st.lists(numbers | strings, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")
    return numbers | strings | items | junk


@st.composite
def _selection(draw: st.DrawFn, type_name: str, depth: int = 0) -> str:
    """A selection set of type_name's fields (or bogus ones), with arguments, aliases and repeats."""
    object_type = schema().get_type(type_name)
    assert isinstance(object_type, GraphQLObjectType)
    names = draw(
        st.lists(
            st.sampled_from([*sorted(object_type.fields), "__typename", "bogus"]), min_size=1, max_size=5
        )
    )
    parts = []
    for name in names:
        field = object_type.fields.get(name)
        alias = draw(st.sampled_from(["", "", "", "a: ", "b: "]))
        arguments = ""
        if field is not None and field.args and draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from(sorted(field.args)), unique=True, min_size=1, max_size=4))
            values = [f"{arg}: {draw(_arg_values(field.args[arg].type))}" for arg in chosen]
            arguments = "(" + ", ".join(values) + ")"
        below = ""
        item_type = get_named_type(field.type) if field is not None else None
        if isinstance(item_type, GraphQLObjectType):
            below = (
                " { " + (draw(_selection(item_type.name, depth + 1)) if depth < 3 else "__typename") + " }"
            )
        parts.append(f"{alias}{name}{arguments}{below}")
    repeat = draw(st.sampled_from([1, 1, 1, 2, MAX_SAME_FIELD + 1]))  # aliases over the limit, now and then
    return " ".join(parts * repeat)


GRAPHQL_DOCUMENTS = st.one_of(
    _selection("Query").map(lambda s: "{ " + s + " }"),
    _selection("Query").map(lambda s: "query Q($v: Int) { " + s + " }"),
    _selection("Query").map(lambda s: "{ " + s + " }"),
    _selection("Mutation").map(lambda s: "mutation { " + s + " }"),
    _selection("Project").map(
        lambda s: 'query { project(name: "fuzz") { ...P } } fragment P on Project { ' + s + " }"
    ),
    _selection("Run").map(lambda s: '{ project(name: "fuzz") { runs(first: 3) { ' + s + " } } }"),
    st.text(max_size=40),
)
_GRAPHQL_MORE = st.fixed_dictionaries(
    {"query": GRAPHQL_DOCUMENTS},
    optional={
        "variables": st.dictionaries(st.sampled_from(["v", "p", "input"]), JSON_VALUES, max_size=2)
        | JSON_VALUES,
        "operationName": st.sampled_from(["Q", "P", ""]) | JSON_VALUES,
    },
)
# Mostly a bare query, so most requests get past the envelope's checks and run.
GRAPHQL_BODIES = st.one_of(*[GRAPHQL_DOCUMENTS.map(lambda query: {"query": query})] * 3, _GRAPHQL_MORE)
BODIES = st.one_of(
    st.none(),
    st.binary(max_size=64),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    GRAPHQL_BODIES.map(lambda value: json.dumps(value).encode()),
    st.just(b"x" * (FUZZ_MAX_BODY + 1)),
    st.just("chunked"),  # a chunked body over the limit, without a length
)
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])


def assert_answered_in_shape(response: requests.Response, method: str) -> None:
    assert response.status_code < 500, response.text
    if response.status_code < 400 or method == "HEAD":
        return
    assert response.headers["content-type"] == "application/json", response.text
    errors = response.json()["errors"]
    assert errors and all(isinstance(e["message"], str) and e["message"] for e in errors), errors
    codes = {e["extensions"]["code"] for e in errors}
    assert "INTERNAL" not in codes and codes <= set(CODES), errors
    assert response.status_code in {CODES[code] for code in codes}, (response.status_code, errors)


def _send(url: str, method: str, headers: dict[str, str], body: bytes | str | None) -> requests.Response:
    data: Any = body
    if body == "chunked":
        data = iter([b"[", b"1," * FUZZ_MAX_BODY, b"1]"])
    return requests.request(method, url, headers=headers, data=data, timeout=60)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=METHODS, path=PATHS, query=QUERY_STRINGS, headers=HEADERS, body=BODIES)
def test_no_request_makes_the_server_fail(
    fuzzed: ServerProcess,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes | str | None,
) -> None:
    assert_answered_in_shape(_send(f"{fuzzed.url}{path}{query}", method, headers, body), method)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=GRAPHQL_BODIES, content_type=st.sampled_from(["application/json", "application/graphql+json"]))
def test_no_graphql_request_makes_the_server_fail(
    fuzzed: ServerProcess, body: dict[str, Any], content_type: str
) -> None:
    response = requests.post(
        f"{fuzzed.url}/graphql",
        data=json.dumps(body).encode(),
        headers={"Content-Type": content_type},
        timeout=60,
    )
    if response.status_code == 200:
        assert "errors" not in response.json() or all(
            e["extensions"]["code"] not in ("INTERNAL", "BAD_REQUEST") for e in response.json()["errors"]
        )
    assert_answered_in_shape(response, "POST")

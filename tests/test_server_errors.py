"""Bad input, endpoint by endpoint: always a 4xx in the one error shape, and nothing half-applied.

The server runs with small limits (--max-body, --max-upload) so the size checks are cheap to hit.
After every refused request the victim run must read back exactly as before, and at the end
the server's log must hold no traceback: input never makes the server fail.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving import Client, ServerProcess, start_server

MAX_BODY = 4096
MAX_UPLOAD = 10_000
PROJECT, RUN = "victim", "r1"
STREAM = f"/files/local/{PROJECT}/{RUN}/file_stream"
SNAPSHOT = (
    "state exitCode historyLineCount lastStep history output events summaryMetrics config tags files { name }"
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(
        tmp_path_factory.mktemp("server"),
        extra_args=["--max-body", str(MAX_BODY), "--max-upload", str(MAX_UPLOAD)],
    )
    client = Client(server.url)
    client.upsert(PROJECT, RUN, config=json.dumps({"lr": {"value": 0.1}}), tags=["t"])
    post = {
        "files": {
            "wandb-history.jsonl": {"offset": 0, "content": [json.dumps({"_step": s}) for s in range(3)]},
            "output.log": {"offset": 0, "content": ["a", "b"]},
            "wandb-summary.json": {"offset": 0, "content": ['{"a": 1}']},
            "wandb-events.jsonl": {"offset": 0, "content": ['{"cpu": 1}']},
        }
    }
    assert client.stream(PROJECT, RUN, post).status_code == 200
    yield server
    server.stop()
    assert "Traceback" not in server.log() and " 500 " not in server.log(), server.log_tail()


@pytest.fixture
def client(served: ServerProcess) -> Client:
    return Client(served.url)


GOOD_ROW = '{"_step": 3, "loss": 1}'
RUN_QUERY = '{ project(name: "victim") { run(name: "r1") { %s } } }'
DEEP = "{ projects { " + "runs { project { " * 5 + "name" + " } }" * 5 + " } }"  # 12 fields deep


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int
    code: str
    json: Any = None
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def stream(id: str, body: Any, status: int = 400, code: str = "BAD_REQUEST", path: str = STREAM) -> Case:
    """A file-stream post: a JSON value, or bytes sent as they are."""
    if isinstance(body, bytes | Iterator):
        return Case(id, "POST", path, status, code, data=body)
    return Case(id, "POST", path, status, code, json=body)


def upsert(fields: str, variables: str = "") -> str:
    """An upsertBucket of the victim run with these input fields (and variable declarations)."""
    run = f'name: "{RUN}", project: "{PROJECT}"'
    return f"mutation {variables} {{ upsertBucket(input: {{{run}, {fields}}}) {{ inserted }} }}"


UPSERT = upsert("config: $c", "($c: JSONString)")


def graphql(id: str, query: Any, status: int = 400, code: str = "BAD_REQUEST", **more: Any) -> Case:
    return Case(id, "POST", "/graphql", status, code, json={"query": query, **more})


def history(*lines: Any, offset: Any = 3) -> dict[str, Any]:
    """A file-stream body whose history starts where the victim's ends (so a partial write would show)."""
    return {"files": {"wandb-history.jsonl": {"offset": offset, "content": list(lines)}}}


def files_part(name: str, *lines: str, offset: int = 0) -> dict[str, Any]:
    return {"files": {name: {"offset": offset, "content": list(lines)}}}


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
FILE = f"/files/local/{PROJECT}/{RUN}"

CASES = [
    # ---- the file stream
    stream("stream: not JSON", b'{"files": '),
    stream("stream: array, not object", b"[1, 2]"),
    stream("stream: files not an object", {"files": []}),
    stream("stream: file part not an object", {"files": {"output.log": 3}}),
    stream("stream: offset a string", history(GOOD_ROW, offset="3")),
    stream("stream: negative offset", history(GOOD_ROW, offset=-1)),
    stream("stream: offset true", history(GOOD_ROW, offset=True)),
    stream("stream: offset beyond 32 bits", history(GOOD_ROW, offset=2**40)),
    stream("stream: offset missing", {"files": {"wandb-history.jsonl": {"content": [GOOD_ROW]}}}),
    stream(
        "stream: content not a list", {"files": {"wandb-history.jsonl": {"offset": 3, "content": GOOD_ROW}}}
    ),
    stream("stream: content item a number", history(GOOD_ROW, 7)),
    stream("stream: row not JSON", history(GOOD_ROW, '{"_step": 4,')),
    stream("stream: row not an object", history(GOOD_ROW, "[4]")),
    stream("stream: row without _step", history(GOOD_ROW, '{"x": 1}')),
    stream("stream: float _step", history(GOOD_ROW, '{"_step": 4.5}')),
    stream("stream: string _step", history(GOOD_ROW, '{"_step": "4"}')),
    stream("stream: boolean _step", history(GOOD_ROW, '{"_step": true}')),
    stream("stream: _step beyond 64 bits", history(f'{{"_step": {2**64}}}')),
    stream(
        "stream: row nested too deep", history(GOOD_ROW, '{"_step": 4, "x": ' + "[" * 300 + "]" * 300 + "}")
    ),
    stream(
        "stream: summary nested too deep",
        files_part("wandb-summary.json", '{"a": ' + "[" * 300 + "]" * 300 + "}"),
    ),
    stream("stream: complete not a boolean", {**history(GOOD_ROW), "complete": "yes"}),
    stream("stream: exitcode a string", {**history(GOOD_ROW), "complete": True, "exitcode": "0"}),
    stream("stream: complete without exitcode", {**history(GOOD_ROW), "complete": True}),
    stream(
        "stream: summary not an object", {"files": {"wandb-summary.json": {"offset": 0, "content": ["[1]"]}}}
    ),
    stream("stream: output line a list", {"files": {"output.log": {"offset": 2, "content": [["x"]]}}}),
    stream(
        "stream: good history, bad events",
        {
            "files": {
                "wandb-history.jsonl": {"offset": 3, "content": [GOOD_ROW]},
                "wandb-events.jsonl": {"offset": 1, "content": ["not json"]},
            },
            "complete": True,
            "exitcode": 0,
        },
    ),
    stream("stream: too large", history(*[GOOD_ROW] * 300), 413, "PAYLOAD_TOO_LARGE"),
    stream(
        "stream: too large, chunked",
        iter([b'{"files": {"output.log": {"offset": 2, "content": ["', b"x" * MAX_BODY, b'"]}}}']),
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    Case(
        "stream: form content type", "POST", STREAM, 415, "UNSUPPORTED_MEDIA_TYPE", data=b"x=1", headers=FORM
    ),
    Case("stream: GET", "GET", STREAM, 405, "METHOD_NOT_ALLOWED"),
    stream(
        "stream: unknown run", history(GOOD_ROW), 404, "NOT_FOUND", f"/files/local/{PROJECT}/nope/file_stream"
    ),
    stream(
        "stream: another entity",
        history(GOOD_ROW),
        404,
        "NOT_FOUND",
        f"/files/other/{PROJECT}/{RUN}/file_stream",
    ),
    stream("stream: bad project name", history(GOOD_ROW), path="/files/local/a%3Ab/r1/file_stream"),
    stream("stream: dot-dot project", history(GOOD_ROW), path="/files/local/%2E%2E/r1/file_stream"),
    # ---- GraphQL
    Case("graphql: not JSON", "POST", "/graphql", 400, "BAD_REQUEST", data=b"{query"),
    Case(
        "graphql: array body", "POST", "/graphql", 400, "BAD_REQUEST", json=[{"query": "{ viewer { id } }"}]
    ),
    Case("graphql: no query", "POST", "/graphql", 400, "BAD_REQUEST", json={"variables": {}}),
    graphql("graphql: query not a string", 5),
    graphql("graphql: variables not an object", "{ viewer { id } }", variables=[1]),
    graphql("graphql: syntax error", "{ viewer { id }"),
    graphql("graphql: unknown field", "{ viewer { password } }"),
    graphql("graphql: unknown root field", "{ runs { id } }"),
    graphql("graphql: depth over the limit", DEEP),
    graphql("graphql: nesting too deep to parse", "{a" * 1000 + "}" * 1000),
    graphql(
        "graphql: wrong variable type",
        "query ($n: String!) { project(name: $n) { name } }",
        variables={"n": 5},
    ),
    graphql("graphql: missing variable", "query ($n: String!) { project(name: $n) { name } }"),
    graphql("graphql: unknown operation", "query A { viewer { id } }", operationName="B"),
    graphql(
        "graphql: bad state",
        upsert('state: "paused"'),
    ),
    graphql("graphql: config not JSON", UPSERT, variables={"c": "{lr: 0.1"}),
    graphql("graphql: config a JSON array", UPSERT, variables={"c": "[1]"}),
    graphql(
        "graphql: config nested too deep", UPSERT, variables={"c": '{"a": ' + "[" * 300 + "]" * 300 + "}"}
    ),
    graphql(
        "graphql: config literal not a string",
        upsert("config: 5"),
    ),
    graphql(
        "graphql: summary not an object",
        upsert('summaryMetrics: "3", notes: "x"'),
    ),
    graphql(
        "graphql: run name with a path",
        'mutation { upsertBucket(input: {name: "../x"}) { inserted } }',
    ),
    graphql(
        "graphql: NUL in notes",
        upsert('notes: "a\\u0000b"'),
    ),
    graphql(
        "graphql: group too long",
        upsert("groupName: $g", "($g: String)"),
        variables={"g": "g" * 300},
    ),
    graphql("graphql: samples zero", RUN_QUERY % "history(samples: 0)"),
    graphql("graphql: negative output offset", RUN_QUERY % "output(offset: -1)"),
    graphql("graphql: negative first", '{ project(name: "victim") { runs(first: -1) { name } } }'),
    graphql("graphql: step beyond Int64", RUN_QUERY % f"history(minStep: {2**63})"),
    graphql(
        "graphql: file name with ..",
        'mutation { createRunFiles(input: {project: "victim", run: "r1", files: ["../../x"]}) { runID } }',
    ),
    Case(
        "graphql: text content type",
        "POST",
        "/graphql",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        data=b"x",
        headers=FORM,
    ),
    graphql("graphql: too large", "{ viewer { id } }" + " " * MAX_BODY, 413, "PAYLOAD_TOO_LARGE"),
    Case("graphql: GET", "GET", "/graphql", 405, "METHOD_NOT_ALLOWED"),
    Case("graphql: DELETE", "DELETE", "/graphql", 405, "METHOD_NOT_ALLOWED"),
    # ---- run files, and paths nothing is served at
    Case("upload: no token", "PUT", f"{FILE}/a.txt", 401, "UNAUTHENTICATED", data=b"x"),
    Case(
        "upload: forged token", "PUT", f"{FILE}/a.txt?token=9999999999.abc", 401, "UNAUTHENTICATED", data=b"x"
    ),
    Case(
        "upload: token not ASCII",
        "PUT",
        f"{FILE}/a.txt?token=%C2%B2.%C3%A9",
        401,
        "UNAUTHENTICATED",
        data=b"x",
    ),
    Case("upload: path traversal", "PUT", f"{FILE}/%2E%2E/%2E%2E/x?token=1.a", 400, "BAD_REQUEST", data=b"x"),
    Case("upload: backslash", "PUT", f"{FILE}/a%5Cb?token=1.a", 400, "BAD_REQUEST", data=b"x"),
    Case("upload: absolute", "PUT", f"{FILE}//etc/x?token=1.a", 400, "BAD_REQUEST", data=b"x"),
    Case("upload: to the file stream", "PUT", STREAM, 405, "METHOD_NOT_ALLOWED", data=b"x"),
    Case("download: absent file", "GET", f"{FILE}/nope.txt", 404, "NOT_FOUND"),
    Case("unknown path: telemetry", "POST", "/sdk/otel/v1/traces", 404, "NOT_FOUND", data=b"\x00\x01"),
    Case("unknown path: beyond a page", "GET", "/local/victim/runs/r1/more", 404, "NOT_FOUND"),
    Case("unknown path: a page's shape, posted", "POST", "/local/victim", 404, "NOT_FOUND", data=b"x"),
]


def upload_urls(client: Client, names: list[str]) -> list[str]:
    query = """mutation ($f: [String!]!) {
        createRunFiles(input: {project: "victim", run: "r1", files: $f}) { files { uploadUrl } }
    }"""
    return [f["uploadUrl"] for f in client.data(query, f=names)["createRunFiles"]["files"]]


def snapshot(client: Client) -> Any:
    return client.run(PROJECT, RUN, SNAPSHOT)


def assert_error_shape(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body["errors"], list) and body["errors"]
    for error in body["errors"]:
        assert isinstance(error["message"], str) and error["message"]
    assert body["errors"][0]["extensions"]["code"] == code


def test_there_are_many_kinds_of_bad_input() -> None:
    assert len(CASES) >= 20 and len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_in_the_error_shape_and_changes_nothing(client: Client, case: Case) -> None:
    before = snapshot(client)
    response = requests.request(
        case.method,
        f"{client.url}{case.path}",
        json=case.json,
        data=case.data,
        headers=case.headers,
        timeout=30,
    )
    assert_error_shape(response, case.status, case.code)
    assert snapshot(client) == before


def test_an_upload_over_the_limit_leaves_no_file(client: Client) -> None:
    url = upload_urls(client, ["big.bin"])[0]
    assert_error_shape(requests.put(url, data=b"x" * (MAX_UPLOAD + 1), timeout=30), 413, "PAYLOAD_TOO_LARGE")
    chunks = iter([b"x" * 6000, b"x" * 6000])  # no Content-Length: counted while streaming
    assert_error_shape(requests.put(url, data=chunks, timeout=30), 413, "PAYLOAD_TOO_LARGE")
    assert client.run(PROJECT, RUN, "files { name }")["files"] == []


def test_a_file_name_cannot_clash_with_a_folder(client: Client) -> None:
    first, second = upload_urls(client, ["media/a.png", "media"])
    assert requests.put(first, data=b"png", timeout=30).status_code == 200
    assert_error_shape(requests.put(second, data=b"clash", timeout=30), 400, "BAD_REQUEST")
    assert [f["name"] for f in client.run(PROJECT, RUN, "files { name }")["files"]] == ["media/a.png"]


@pytest.mark.parametrize("path", [STREAM, f"{FILE}/partial.bin?token=1.a", "/graphql"])
def test_a_client_leaving_mid_body_changes_nothing(client: Client, path: str) -> None:
    before = snapshot(client)
    host, _, port = client.url.removeprefix("http://").partition(":")
    method = "PUT" if "token" in path else "POST"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        head += "Content-Length: 1000\r\n\r\n"
        sock.sendall(head.encode() + b'{"files": {"output.log": {"offset": 2, "content": ["x')
    assert snapshot(client) == before


# ---- whatever arrives, the answer is 200 or a 4xx: never a 500 ----------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)
LINES = st.lists(
    st.text(max_size=20)
    | JSON_VALUES.map(json.dumps)
    | st.builds(
        lambda step, x: json.dumps({"_step": step, "x": x}), st.integers(-(2**70), 2**70), JSON_VALUES
    ),
    max_size=4,
)
PARTS = st.fixed_dictionaries(
    {}, optional={"offset": st.integers(-3, 2**33) | JSON_VALUES, "content": LINES | JSON_VALUES}
)
FILE_NAMES = st.sampled_from(
    ["wandb-history.jsonl", "wandb-summary.json", "wandb-events.jsonl", "output.log", "x"]
)
BODIES = st.fixed_dictionaries(
    {},
    optional={
        "files": st.dictionaries(FILE_NAMES, PARTS | JSON_VALUES, max_size=4) | JSON_VALUES,
        "complete": st.booleans() | JSON_VALUES,
        "exitcode": st.integers(-(2**40), 2**40) | JSON_VALUES,
    },
)
UPSERT_INPUTS = st.fixed_dictionaries(
    {"name": st.sampled_from(["fuzz", "a b", "..", "x" * 200])},
    optional={
        "project": st.sampled_from(["fuzz", "", "a/b"]),
        "config": JSON_VALUES.map(json.dumps) | st.text(max_size=10),
        "summaryMetrics": JSON_VALUES.map(json.dumps),
        "metrics": JSON_VALUES.map(json.dumps),
        "state": st.text(max_size=10) | st.sampled_from(["running", "finished"]),
        "tags": st.lists(st.text(max_size=5), max_size=3),
        "notes": st.text(max_size=10),
        "createdAt": st.floats(allow_nan=False, allow_infinity=False),
    },
)


def assert_not_a_server_failure(response: requests.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["errors"][0]["extensions"]["code"] != "INTERNAL"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_no_file_stream_body_makes_the_server_fail(client: Client, body: Any) -> None:
    client.upsert("fuzz", "fuzz")
    assert_not_a_server_failure(client.stream("fuzz", "fuzz", body))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(input=UPSERT_INPUTS)
def test_no_upsert_bucket_input_makes_the_server_fail(client: Client, input: dict[str, Any]) -> None:
    query = "mutation ($i: UpsertBucketInput!) { upsertBucket(input: $i) { inserted bucket { config } } }"
    assert_not_a_server_failure(client.graphql(query, i=input))

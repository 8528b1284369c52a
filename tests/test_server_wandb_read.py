"""The server's side of wandb's public-API reads, without the client: run files as W&B's paged
connection, signed download URLs, history as parquet, and line counts (shapes: docs/wandb-compat.md)."""

from __future__ import annotations

import base64
import hashlib
import math
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest

from nbtrack.server.history_export import column_kind, write_parquet
from nbtrack.server.wandb_files import like_pattern
from tests import serving
from tests.serving import Client, ServerProcess

server = serving.server
pg_server = serving.pg_server

FILES = """query RunFiles($project: String!, $entity: String!, $name: String!, $fileCursor: String,
    $fileLimit: Int = 50, $fileNames: [String] = [], $upload: Boolean = false, $pattern: String) {
    project(name: $project, entityName: $entity) { internalId run(name: $name) { fileCount
        files(names: $fileNames, after: $fileCursor, first: $fileLimit, pattern: $pattern) {
            edges { node { id name url(upload: $upload) directUrl sizeBytes mimetype updatedAt md5 } cursor }
            pageInfo { endCursor hasNextPage } } } } }"""

PARQUET = """query RunParquetHistory($entity: String!, $project: String!, $runName: String!,
    $liveKeys: [String!]!) { project(name: $project, entityName: $entity) { run(name: $runName) {
        parquetHistory(liveKeys: $liveKeys) { parquetUrls liveData } } } }"""

COUNTS = """query C($p: String!, $r: String!) { project(name: $p) { run(name: $r) {
    logLineCount eventsLineCount eventsTail systemMetrics } } }"""


def _wandb(client: Client, query: str, **variables: object) -> dict:
    """A query as wandb's public API sends it (operationName "")."""
    response = client.session.post(
        f"{client.url}/graphql",
        json={"query": query, "variables": variables, "operationName": ""},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def _upload(client: Client, run: str, name: str, content: bytes) -> None:
    query = """mutation F($project: String!, $run: String!, $files: [String!]!) {
        createRunFiles(input: {projectName: $project, runName: $run, files: $files}) {
            files { uploadUrl } } }"""
    [file] = client.data(query, project="p", run=run, files=[name])["createRunFiles"]["files"]
    assert client.session.put(file["uploadUrl"], data=content, timeout=30).status_code == 200


def _setup(served: ServerProcess) -> tuple[Client, str]:
    entity = serving.unique_name("wr")
    client = Client(served.url, entity, serving.create_key(served, entity))
    client.upsert("p", "r1")
    return client, entity


def _check_files_and_urls(served: ServerProcess) -> None:
    client, entity = _setup(served)
    for name, content in [("a.txt", b"A"), ("b_c.json", b"{}"), ("dir/x.bin", b"\x00\xff")]:
        _upload(client, "r1", name, content)
    run = _wandb(client, FILES, project="p", entity=entity, name="r1", fileLimit=2)["project"]["run"]
    assert run["fileCount"] == 3
    page = run["files"]
    assert [edge["node"]["name"] for edge in page["edges"]] == ["a.txt", "b_c.json"]
    assert page["pageInfo"] == {"endCursor": "1", "hasNextPage": True}
    more = _wandb(client, FILES, project="p", entity=entity, name="r1", fileCursor="1")["project"]["run"]
    [last] = more["files"]["edges"]
    node = last["node"]
    assert node["name"] == "dir/x.bin" and node["sizeBytes"] == 2
    assert node["md5"] == base64.b64encode(hashlib.md5(b"\x00\xff").digest()).decode()
    assert node["id"] == f"{entity}/p/r1/dir/x.bin" and node["directUrl"] == node["url"]
    # the download URL needs no key, and gives the bytes
    anonymous = Client(served.url)
    assert anonymous.session.get(node["url"], timeout=30).content == b"\x00\xff"
    # ... but it cannot upload, nor read another file
    assert anonymous.session.put(node["url"], data=b"no", timeout=30).status_code == 401
    other = node["url"].replace("/dir/x.bin?", "/a.txt?")
    assert anonymous.session.get(other, timeout=30).status_code == 401
    # an upload URL (upload: true) cannot download
    up = _wandb(client, FILES, project="p", entity=entity, name="r1", fileNames=["a.txt"], upload=True)
    [edge] = up["project"]["run"]["files"]["edges"]
    assert anonymous.session.get(edge["node"]["url"], timeout=30).status_code == 401
    assert anonymous.session.put(edge["node"]["url"], data=b"B", timeout=30).status_code == 200
    names = _wandb(client, FILES, project="p", entity=entity, name="r1", pattern="%.json")
    assert [e["node"]["name"] for e in names["project"]["run"]["files"]["edges"]] == ["b_c.json"]


def test_files_connection_and_signed_downloads(server: ServerProcess) -> None:
    _check_files_and_urls(server)


def test_files_connection_and_signed_downloads_postgres(pg_server: ServerProcess) -> None:
    _check_files_and_urls(pg_server)


def _check_parquet_history(served: ServerProcess, tmp_path: Path) -> None:
    client, entity = _setup(served)
    rows = [
        '{"_step": 0, "x": NaN, "big": 4611686018427387904, "m": {"a": [1, 2.5]}}',
        '{"_step": 1, "x": Infinity, "big": -4611686018427387904, "s": "t"}',
        '{"_step": 2, "x": -Infinity, "big": 1, "m": {"a": []}}',
    ]
    history = {"files": {"wandb-history.jsonl": {"offset": 0, "content": rows}}}
    assert client.stream("p", "r1", history).status_code == 200
    answer = _wandb(client, PARQUET, entity=entity, project="p", runName="r1", liveKeys=["_step"])
    found = answer["project"]["run"]["parquetHistory"]
    assert found["liveData"] == []
    [url] = found["parquetUrls"]
    anonymous = Client(served.url)
    response = anonymous.session.get(url, timeout=30)
    assert response.status_code == 200, response.text
    (tmp_path / "h.parquet").write_bytes(response.content)
    table = pq.read_table(tmp_path / "h.parquet").to_pylist()
    assert [row["big"] for row in table] == [2**62, -(2**62), 1]
    assert math.isnan(table[0]["x"]) and table[1]["x"] == math.inf and table[2]["x"] == -math.inf
    assert table[0]["m"] == {"a": [1, 2.5]} and table[1]["m"] is None and table[1]["s"] == "t"
    # a token is for its run and segment only
    assert anonymous.session.get(url.replace("/r1/", "/r2/"), timeout=30).status_code == 401
    assert anonymous.session.get(url.replace("/0-3.parquet", "/0-4.parquet"), timeout=30).status_code == 401
    path = urlsplit(url).path
    assert anonymous.session.get(f"{served.url}{path}", timeout=30).status_code == 401
    # more rows: the first segment stays as it was (wandb-core caches it by its place), a new one follows
    more = {"files": {"wandb-history.jsonl": {"offset": 3, "content": ['{"_step": 3, "x": 1}']}}}
    assert client.stream("p", "r1", more).status_code == 200
    again = _wandb(client, PARQUET, entity=entity, project="p", runName="r1", liveKeys=["_step"])
    first, newer = again["project"]["run"]["parquetHistory"]["parquetUrls"]
    assert first.split("?")[0] == url.split("?")[0] and newer.split("?")[0].endswith("/3-4.parquet")
    assert anonymous.session.get(first, timeout=30).content == response.content
    (tmp_path / "h2.parquet").write_bytes(anonymous.session.get(newer, timeout=30).content)
    assert pq.read_table(tmp_path / "h2.parquet").to_pylist() == [{"_step": 3, "x": 1}]


def test_parquet_history(server: ServerProcess, tmp_path: Path) -> None:
    _check_parquet_history(server, tmp_path)


def test_parquet_history_postgres(pg_server: ServerProcess, tmp_path: Path) -> None:
    _check_parquet_history(pg_server, tmp_path)


def test_line_counts_and_last_event(server: ServerProcess) -> None:
    client, _entity = _setup(server)
    stream = {
        "files": {
            "output.log": {"offset": 0, "content": ["one", "two", "three"]},
            "wandb-events.jsonl": {"offset": 0, "content": ['{"cpu": 1}', '{"cpu": 2}']},
        }
    }
    assert client.stream("p", "r1", stream).status_code == 200
    run = client.data(COUNTS, p="p", r="r1")["project"]["run"]
    assert (run["logLineCount"], run["eventsLineCount"]) == (3, 2)
    assert run["eventsTail"] == '["{\\"cpu\\": 2}"]' and run["systemMetrics"] == '{"cpu": 2}'
    client.upsert("p", "empty")
    empty = client.data(COUNTS, p="p", r="empty")["project"]["run"]
    assert empty == {"logLineCount": 0, "eventsLineCount": 0, "eventsTail": "[]", "systemMetrics": "{}"}


def test_bad_export_urls(server: ServerProcess) -> None:
    anonymous = Client(server.url)
    for path in ("/history/e/p/r/not-a-version.parquet?token=1.x", "/history/e/p/r/1-2.parquet"):
        assert anonymous.session.get(f"{server.url}{path}", timeout=30).status_code in (400, 401)


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("%.json", "a.json", True),
        ("%.json", "a.jsonl", False),
        ("b_c.json", "bxc.json", True),
        ("b\\_c%", "bxc.json", False),
        ("b\\_c%", "b_c.json", True),
        ("media/%", "media/images/x.png", True),
        ("a.b", "axb", False),
        ("%", "", True),
    ],
)
def test_like_pattern(pattern: str, name: str, matches: bool) -> None:
    assert (like_pattern(pattern).fullmatch(name) is not None) == matches


def test_column_kinds(tmp_path: Path) -> None:
    assert column_kind([1, None, 2]) == "int64"
    assert column_kind([1, 2.5, math.nan]) == "double"
    assert column_kind([2**62, 0.5]) == "json"  # 2**62 + 1 has no double: kept as text, exactly
    assert column_kind([True, False]) == "bool"
    assert column_kind([True, 1]) == "json"
    assert column_kind([2**64]) == "json"
    assert column_kind(["a", None]) == "string"
    where = tmp_path / "t.parquet"
    write_parquet([{"_step": 0, "k": {"a": 1}}, {"_step": 1, "k": {"b": 2}}, {"_step": 2}], str(where))
    rows = pq.read_table(where).to_pylist()
    assert [row["k"] for row in rows] == ['{"a":1}', '{"b":2}', None]  # different keys: JSON text
    write_parquet([], str(where))
    assert pq.read_table(where).column_names == ["_step"]

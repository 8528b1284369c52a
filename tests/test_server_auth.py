"""Who may do what on a tracking server: open mode on loopback, API keys, entities kept apart."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests import serving
from tests.serving import Client, ServerProcess, create_key, free_port, start_server

server = serving.server  # the fixture: a server on a fresh SQLite store, open mode until a key exists


def assert_unauthenticated(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == 'Basic realm="nbtrack"'
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_open_mode_on_loopback_acts_as_the_local_entity(server: ServerProcess) -> None:
    anonymous = Client(server.url)
    assert anonymous.data("{ viewer { entity } }") == {"viewer": {"entity": "local"}}
    # Without keys there is nothing to check a key against: any credentials act as "local" too.
    stray = Client(server.url, key="nbt_not_a_key")
    assert stray.data("{ viewer { entity } }") == {"viewer": {"entity": "local"}}
    stray.upsert("p", "r1")
    assert stray.stream("p", "r1", {"files": {}}).status_code == 200


def test_a_key_created_while_serving_ends_open_mode_at_once(server: ServerProcess) -> None:
    anonymous = Client(server.url)
    anonymous.upsert("p", "before")
    key = create_key(server, "alice")
    assert_unauthenticated(anonymous.graphql("{ viewer { entity } }"))
    assert_unauthenticated(anonymous.stream("p", "before", {"files": {}}))
    assert_unauthenticated(Client(server.url, "alice", "nbt_" + "0" * 40).graphql("{ viewer { entity } }"))
    assert_unauthenticated(anonymous.session.get(f"{server.url}/files/local/p/before/x.txt", timeout=10))
    alice = Client(server.url, "alice", key)
    assert alice.data("{ viewer { entity username } }") == {
        "viewer": {"entity": "alice", "username": "alice"}
    }
    # The health check stays open: load balancers probe it without credentials.
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_malformed_authorization_headers_are_unauthenticated(server: ServerProcess) -> None:
    create_key(server, "alice")
    for header in ["Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic"]:
        response = requests.post(
            f"{server.url}/graphql",
            json={"query": "{ viewer { entity } }"},
            headers={"Authorization": header},
            timeout=10,
        )
        assert_unauthenticated(response)


def test_entities_cannot_see_or_touch_each_others_runs(server: ServerProcess) -> None:
    alice = Client(server.url, "alice", create_key(server, "alice"))
    bob = Client(server.url, "bob", create_key(server, "bob"))
    alice.upsert("secret", "r1", config=json.dumps({"lr": {"value": 0.1}}))
    assert alice.stream(
        "secret", "r1", {"files": {"wandb-history.jsonl": {"offset": 0, "content": ['{"_step": 0}']}}}
    ).ok
    files_query = """mutation {
        createRunFiles(input: {project: "secret", run: "r1", files: ["a.txt"]}) { files { uploadUrl } }
    }"""
    upload_url = alice.data(files_query)["createRunFiles"]["files"][0]["uploadUrl"]
    assert requests.put(upload_url, data=b"alice's", timeout=10).ok

    # Reading: absent, whichever way bob asks.
    assert bob.data("{ projects { name } }") == {"projects": []}
    assert bob.data('{ projects(entityName: "alice") { name } }') == {"projects": []}
    assert bob.data('{ project(name: "secret") { name } }') == {"project": None}
    assert bob.data('{ project(name: "secret", entityName: "alice") { name } }') == {"project": None}
    download = bob.session.get(f"{server.url}/files/alice/secret/r1/a.txt", timeout=10)
    assert download.status_code == 404 and download.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    # Writing: not found, and nothing of alice's changes.
    post = {
        "files": {"wandb-history.jsonl": {"offset": 0, "content": ['{"_step": 99}']}},
        "complete": True,
        "exitcode": 1,
    }
    assert bob.stream("secret", "r1", post, entity="alice").status_code == 404
    for query in [
        'mutation { upsertBucket(input: {name: "r1", project: "secret", entity: "alice", state: "failed"}) '
        "{ inserted } }",
        'mutation { upsertBucket(input: {name: "r1", modelName: "secret", entityName: "alice"}) '
        "{ inserted } }",
        'mutation { createRunFiles(input: {entityName: "alice", project: "secret", run: "r1", files: ["b"]}) '
        "{ runID } }",
    ]:
        body = bob.graphql(query).json()
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
    run = alice.run("secret", "r1", "state history")
    assert run == {"state": "running", "history": '[{"_step": 0}]'}

    # The same names in bob's own entity are bob's own run.
    assert bob.upsert("secret", "r1")["inserted"] is True
    assert bob.run("secret", "r1", "historyLineCount") == {"historyLineCount": 0}


def test_upload_urls_need_their_token_not_a_key(server: ServerProcess) -> None:
    alice = Client(server.url, "alice", create_key(server, "alice"))
    alice.upsert("p", "r1")
    query = """mutation {
        createRunFiles(input: {project: "p", run: "r1", files: ["a.txt", "b.txt"]}) { files { uploadUrl } }
    }"""
    url_a, url_b = (f["uploadUrl"] for f in alice.data(query)["createRunFiles"]["files"])
    token_b = url_b.partition("?token=")[2]
    for bad in [
        url_a.partition("?")[0],
        f"{url_a.partition('?')[0]}?token={token_b}",
        url_a + "0",
        url_a.replace("/p/", "/q/"),
    ]:
        response = requests.put(bad, data=b"x", timeout=10)
        assert (
            response.status_code == 401
            and response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        )
    assert requests.put(url_a, data=b"x", timeout=10).status_code == 200
    assert [f["name"] for f in alice.run("p", "r1", "files { name }")["files"]] == ["a.txt"]


def test_keys_never_reach_the_log(server: ServerProcess) -> None:
    key = create_key(server, "alice")
    alice = Client(server.url, "alice", key)
    alice.upsert("p", "r1")
    alice.stream("p", "r1", {"files": {"wandb-history.jsonl": {"offset": 0, "content": ["not json"]}}})
    Client(server.url, "alice", key[:-1] + "0").graphql("{ viewer { entity } }")
    server.stop()
    log = server.log()
    assert "serving" in log
    for secret in [key, key[:-1] + "0", base64.b64encode(f"api:{key}".encode()).decode()]:
        assert secret not in log


def test_binding_beyond_loopback_without_keys_is_refused(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbtrack.cli",
            "server",
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
            "--dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "nbtrack server key create ENTITY" in result.stderr and result.stdout == ""
    assert time.monotonic() - started < 15


def test_beyond_loopback_with_a_key_every_request_needs_one(tmp_path: Path) -> None:
    key = create_key(tmp_path / "root", "alice")
    served = start_server(tmp_path, extra_args=["--host", "0.0.0.0", "--dir", str(tmp_path / "root")])
    try:
        assert_unauthenticated(Client(served.url).graphql("{ viewer { entity } }"))
        assert Client(served.url, "alice", key).data("{ viewer { entity } }") == {
            "viewer": {"entity": "alice"}
        }
    finally:
        served.stop()
    assert "0.0.0.0" in served.log() and "1 key)" in served.log()

"""The artifact operations on a real `nbtrack server`, sent by hand in the shapes wandb 0.31 sends
(docs/wandb-compat.md, "Artifacts"): what the client cannot be made to do wrong. A body whose MD5
is not its URL's is refused and leaves nothing; a commit before every file is stored is refused
naming the file; another entity's artifact reads as absent; the downloads need a key or a token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests import serving
from tests.serving import Client, ServerProcess

CREATE = """mutation CreateArtifact($input: CreateArtifactInput!) {
  createArtifact(input: $input) { artifact { id state versionIndex } } }"""
FILES = """mutation CreateArtifactFiles($input: CreateArtifactFilesInput!) {
  createArtifactFiles(input: $input) { files { edges { node { name storagePath uploadUrl } } } } }"""
MANIFEST = """mutation M($id: ID!) { createArtifactManifest(input: {artifactID: $id,
  name: "wandb_manifest.json", digest: "", entityName: "ENTITY", projectName: "p", runName: "r",
  type: FULL}) {
  artifactManifest { id file { uploadUrl directUrl } } } }"""
COMMIT = """mutation C($id: ID!) {
  commitArtifact(input: {artifactID: $id}) { artifact { id versionIndex aliases { alias } } } }"""
FILES_QUERY = """query A($id: ID!) { artifact(id: $id) { files { edges { node { name directUrl } } } } }"""


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.fixture(params=serving.FILE_BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> ServerProcess:
    running = serving.start_server(tmp_path, files=serving.files_on(request.param))
    request.addfinalizer(running.stop)
    return running


def _client(served: ServerProcess, entity: str) -> Client:
    return Client(served.url, entity, serving.create_key(served, entity))


def _pending(client: Client, files: dict[str, bytes]) -> tuple[str, dict[str, str | None]]:
    """A PENDING version of ds with these files: its id, and each file's upload URL."""
    client.upsert("p", "r")
    created = client.data(
        CREATE,
        input={
            "entityName": client.entity,
            "projectName": "p",
            "runName": "r",
            "artifactTypeName": "dataset",
            "artifactCollectionName": "ds",
            "digest": hashlib.md5(json.dumps(sorted(files)).encode()).hexdigest(),
            "aliases": [{"artifactCollectionName": "ds", "alias": "best"}],
        },
    )["createArtifact"]["artifact"]
    assert created["state"] == "PENDING" and created["versionIndex"] is None
    specs = [{"artifactID": created["id"], "name": name, "md5": _md5(data)} for name, data in files.items()]
    edges = client.data(FILES, input={"artifactFiles": specs, "storageLayout": "V2"})["createArtifactFiles"]
    return created["id"], {e["node"]["name"]: e["node"]["uploadUrl"] for e in edges["files"]["edges"]}


def _manifest(client: Client, artifact_id: str, files: dict[str, bytes]) -> str:
    """Upload the manifest of these files; the URL it went to."""
    answer = client.data(MANIFEST.replace("ENTITY", client.entity), id=artifact_id)
    url = answer["createArtifactManifest"]["artifactManifest"]["file"]["uploadUrl"]
    contents = {name: {"digest": _md5(data), "size": len(data)} for name, data in files.items()}
    body = json.dumps({"version": 1, "storagePolicy": "wandb-storage-policy-v1", "contents": contents})
    answered = requests.put(url, data=body, timeout=30)
    assert answered.status_code == 200, answered.text
    return str(url)


def test_a_corrupt_upload_is_refused_and_the_commit_names_the_missing_file(served: ServerProcess) -> None:
    client = _client(served, serving.unique_name("art"))
    files = {"a.txt": b"alpha", "b.txt": b"beta"}
    artifact_id, urls = _pending(client, files)
    assert all(urls.values())
    bad = requests.put(urls["b.txt"], data=b"not beta", timeout=30)  # type: ignore[arg-type]
    assert bad.status_code == 400 and "MD5" in bad.json()["errors"][0]["message"]
    assert requests.put(urls["a.txt"], data=b"alpha", timeout=30).status_code == 200  # type: ignore[arg-type]
    manifest_url = _manifest(client, artifact_id, files)
    refused = client.graphql(COMMIT, id=artifact_id).json()
    assert "b.txt" in refused["errors"][0]["message"] and "not uploaded" in refused["errors"][0]["message"]
    # The stored file is not asked again; the corrupt one is.
    _, again = _pending(client, {"a.txt": b"alpha", "c.txt": b"beta"})
    assert again["a.txt"] is None and again["c.txt"] is not None
    assert requests.put(urls["b.txt"], data=b"beta", timeout=30).status_code == 200  # type: ignore[arg-type]
    committed = client.data(COMMIT, id=artifact_id)["commitArtifact"]["artifact"]
    assert committed["versionIndex"] == 0
    late = requests.put(manifest_url, data=b'{"contents": {}}', timeout=30)
    assert late.status_code == 409 and "manifest is final" in late.text  # a committed manifest is final
    assert sorted(a["alias"] for a in committed["aliases"]) == ["best", "latest"]
    listed = client.data(FILES_QUERY, id=artifact_id)["artifact"]["files"]["edges"]
    got = {e["node"]["name"]: requests.get(e["node"]["directUrl"], timeout=30).content for e in listed}
    assert got == files


def test_another_entitys_artifact_and_files_read_as_absent(served: ServerProcess) -> None:
    owner = _client(served, serving.unique_name("own"))
    files = {"secret.txt": b"mine only"}
    artifact_id, urls = _pending(owner, files)
    assert requests.put(urls["secret.txt"], data=files["secret.txt"], timeout=30).status_code == 200  # type: ignore[arg-type]
    _manifest(owner, artifact_id, files)
    owner.data(COMMIT, id=artifact_id)
    other = _client(served, serving.unique_name("other"))
    assert other.data(FILES_QUERY, id=artifact_id)["artifact"] is None
    md5_hex = hashlib.md5(files["secret.txt"]).hexdigest()
    blob = f"{served.url}/artifacts/{owner.entity}/{md5_hex}"
    assert other.session.get(blob, timeout=30).status_code == 404
    assert requests.get(blob, timeout=30).status_code == 401  # no key, no token
    assert owner.session.get(blob, timeout=30).content == files["secret.txt"]
    # wandb's storage layout V2, which the client builds itself when it has no directUrl.
    v2 = f"{served.url}/artifactsV2/default/{owner.entity}/p/ds/QXJ0aWZhY3Q6MQ==/{md5_hex}/secret.txt"
    assert owner.session.get(v2, timeout=30).content == files["secret.txt"]
    assert other.session.get(v2, timeout=30).status_code == 404
    forged = requests.get(f"{blob}?token=1999999999.00", timeout=30)
    assert forged.status_code == 401


def _cut_upload(url: str, declared: int, sent: bytes) -> None:
    """PUT declaring `declared` bytes, send `sent`, and hang up: an upload cut half-way."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        head = (
            f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Length: {declared}\r\n\r\n"
        )
        sock.sendall(head.encode() + sent)


def test_an_interrupted_upload_leaves_nothing_and_is_asked_again(served: ServerProcess) -> None:
    client = _client(served, serving.unique_name("cut"))
    data = bytes(range(256)) * 400
    artifact_id, urls = _pending(client, {"big.bin": data})
    url = urls["big.bin"]
    assert url is not None
    _cut_upload(url, len(data), data[:5000])
    md5_hex = hashlib.md5(data).hexdigest()
    # Asked again (not recorded as stored), and no key of it in the backend.
    _, again = _pending(client, {"big.bin": data})
    assert again["big.bin"] is not None
    assert [key for key in served.stored_files("~artifacts/") if key.endswith(md5_hex)] == []
    assert requests.put(url, data=data, timeout=30).status_code == 200  # the retry is whole
    _manifest(client, artifact_id, {"big.bin": data})
    assert client.data(COMMIT, id=artifact_id)["commitArtifact"]["artifact"]["versionIndex"] == 0
    assert client.session.get(f"{served.url}/artifacts/{client.entity}/{md5_hex}", timeout=30).content == data

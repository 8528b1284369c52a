"""Request shapes the wandb client sends (captured: docs/wandb-compat.md), without the client itself."""

from __future__ import annotations

from tests import serving
from tests.serving import Client, ServerProcess

server = serving.server

VIEWER = """query Viewer { viewer { id entity username email flags teams { edges { node { name } } } } }"""


def test_empty_operation_name_means_none(server: ServerProcess) -> None:
    client = Client(server.url)
    response = client.session.post(
        f"{server.url}/graphql", json={"query": VIEWER, "operationName": "", "variables": {}}, timeout=30
    )
    assert response.status_code == 200, response.text
    viewer = response.json()["data"]["viewer"]
    assert viewer == {
        "id": "local",
        "entity": "local",
        "username": "local",
        "email": None,
        "flags": "{}",
        "teams": {"edges": []},
    }


def test_create_run_files_with_wandbs_names(server: ServerProcess) -> None:
    client = Client(server.url)
    client.upsert("p", "r1")
    query = """mutation CreateRunFiles(
        $entity: String!, $project: String!, $run: String!, $files: [String!]!
    ) {
        createRunFiles(input: {entityName: $entity, projectName: $project, runName: $run, files: $files}) {
            runID uploadHeaders files { name uploadUrl } } }"""
    data = client.data(query, entity="local", project="p", run="r1", files=["a.txt"])["createRunFiles"]
    [file] = data["files"]
    assert file["name"] == "a.txt" and "token=" in file["uploadUrl"]
    assert client.session.put(file["uploadUrl"], data=b"hi", timeout=30).status_code == 200
    assert client.run("p", "r1", "files { name sizeBytes }")["files"] == [{"name": "a.txt", "sizeBytes": 2}]
    # neither name of the project: refused, saying which
    missing = client.graphql('mutation { createRunFiles(input: {runName: "r1", files: ["a"]}) { runID } }')
    assert missing.status_code == 400 and "projectName" in missing.text


def test_resume_status_query(server: ServerProcess) -> None:
    client = Client(server.url)
    client.upsert("p", "r1", config='{"_wandb": {"value": {"t": {"1": [5]}, "m": []}}, "lr": {"value": 1}}')
    client.stream(
        "p",
        "r1",
        {
            "files": {
                "wandb-history.jsonl": {
                    "offset": 0,
                    "content": ['{"_step": 0, "x": 1}', '{"_step": 1, "x": NaN}'],
                }
            }
        },
    )
    query = """query RunResumeStatus($project: String, $entity: String, $name: String!) {
        model(name: $project, entityName: $entity) { id name entity { id name }
            bucket(name: $name, missingOk: true) { id name summaryMetrics displayName logLineCount
                historyLineCount eventsLineCount historyTail eventsTail config tags notes
                wandbConfig(keys: ["t"]) } } }"""
    bucket = client.data(query, project="p", entity="local", name="r1")["model"]["bucket"]
    assert bucket["historyLineCount"] == 2 and bucket["logLineCount"] == 0
    assert bucket["historyTail"] == r'["{\"_step\":1,\"x\":NaN}"]'
    assert bucket["eventsTail"] == "[]"
    assert bucket["wandbConfig"] == '{"t":{"1":[5]}}'
    absent = client.data(query, project="p", entity="local", name="nope")["model"]["bucket"]
    assert absent is None

"""The tracking server end to end: a real `nbtrack server` process on SQLite and on PostgreSQL.

Each test works in a project of its own, so the servers are shared per module; on PostgreSQL
(a database other tests share) the client also acts as an entity of its own, with a key.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from nbtrack import jsonutil
from tests.serving import POSTGRES_URL, Client, create_key, files_on, start_server, unique_name


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    yield from _serve(request.param, tmp_path_factory)


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "sqlite+s3", "postgresql+s3"])
def files_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """A server whose run files are in a folder or in the S3 bucket (NBTRACK_TEST_S3_URL)."""
    yield from _serve(request.param, tmp_path_factory)


def _serve(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    database, _, backend = kind.partition("+")
    if database == "postgresql" and not POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL")
    db_url = POSTGRES_URL if database == "postgresql" else None
    files = files_on(backend or "folder")
    server = start_server(tmp_path_factory.mktemp("server"), db_url=db_url, files=files)
    if db_url:
        entity = unique_name("ent")
        client = Client(server.url, entity, create_key(server, entity))
    else:
        client = Client(server.url)
    yield client
    server.stop()
    assert "Traceback" not in server.log(), server.log_tail()


@pytest.fixture
def project() -> str:
    return unique_name("proj")


def rows(steps: range, **extra: Any) -> list[str]:
    return [json.dumps({"_step": s, "loss": 1 / (s + 1), **extra}) for s in steps]


def history_post(offset: int, lines: list[str], **more: Any) -> dict[str, Any]:
    return {"files": {"wandb-history.jsonl": {"offset": offset, "content": lines}}, **more}


def steps_of(history_text: str) -> list[int]:
    return [row["_step"] for row in jsonutil.loads(history_text)]


# ---- health, identity ------------------------------------------------------------------------


def test_healthz_answers_ok(api: Client) -> None:
    response = requests.get(f"{api.url}/healthz", timeout=10)
    assert response.status_code == 200 and response.json() == {"ok": True}


def test_viewer_and_server_info(api: Client) -> None:
    data = api.data("{ viewer { id username entity } serverInfo { features { name isEnabled } } }")
    assert data["viewer"]["entity"] == api.entity
    assert {"name": "NBTRACK_HISTORY_SAMPLING", "isEnabled": True} in data["serverInfo"]["features"]


# ---- upsertBucket ------------------------------------------------------------------------


def test_upsert_bucket_creates_then_updates(api: Client, project: str) -> None:
    config = {"lr": {"value": 0.1, "desc": "learning rate"}, "layers": {"value": [64, 32]}, "bare": 3}
    created = api.upsert(
        project,
        "run1",
        displayName="brisk-sun-1",
        config=json.dumps(config),
        summaryMetrics=json.dumps({"loss": 0.5}),
        tags=["a", "b"],
        notes="first try",
        groupName="g",
        jobType="train",
        host="box",
        program="train.py",
        createdAt=1000.5,
    )
    assert created["inserted"] is True
    bucket = created["bucket"]
    assert (bucket["id"], bucket["name"], bucket["displayName"]) == (
        f"{api.entity}/{project}/run1",
        "run1",
        "brisk-sun-1",
    )
    assert bucket["project"] == {"name": project, "entity": {"name": api.entity}}
    # W&B's config form comes back, each key's value under "value" (a key without one as it was sent).
    assert json.loads(bucket["config"]) == {
        "lr": {"value": 0.1},
        "layers": {"value": [64, 32]},
        "bare": {"value": 3},
    }

    updated = api.upsert(project, "run1", state="finished")
    assert updated["inserted"] is False
    run = api.run(
        project,
        "run1",
        "state displayName tags notes description group jobType host program createdAt config summaryMetrics",
    )
    assert run["state"] == "finished"  # changed ...
    assert (run["displayName"], run["tags"], run["notes"], run["description"]) == (
        "brisk-sun-1",
        ["a", "b"],
        "first try",
        "first try",
    )
    assert (run["group"], run["jobType"], run["host"], run["program"]) == ("g", "train", "box", "train.py")
    assert run["createdAt"] == 1000.5  # ... and everything not sent is as it was
    assert json.loads(run["summaryMetrics"]) == {"loss": 0.5}
    assert json.loads(run["config"])["lr"] == {"value": 0.1}


def test_upsert_bucket_takes_wandb_field_names(api: Client, project: str) -> None:
    query = "mutation ($i: UpsertBucketInput!) { upsertBucket(input: $i) { bucket { project { name } } } }"
    data = api.data(
        query,
        i={
            "name": "w1",
            "modelName": project,
            "entityName": api.entity,
            "jobProgram": "x.py",
            "debug": False,
        },
    )
    assert data["upsertBucket"]["bucket"]["project"]["name"] == project
    assert api.run(project, "w1", "program")["program"] == "x.py"


def test_upsert_bucket_without_project_goes_to_uncategorized(api: Client) -> None:
    run_id = unique_name("r")
    data = api.data(
        "mutation ($n: String) { upsertBucket(input: {name: $n}) { bucket { project { name } } } }", n=run_id
    )
    assert data["upsertBucket"]["bucket"]["project"]["name"] == "uncategorized"


def test_metric_definitions_and_summary_are_replaced(api: Client, project: str) -> None:
    metrics = [{"name": "loss", "summary": "min", "step_metric": None}]
    api.upsert(project, "m1", metrics=json.dumps(metrics), summaryMetrics=json.dumps({"a": 1, "b": 2}))
    api.upsert(project, "m1", summaryMetrics=json.dumps({"a": 3}))
    run = api.run(project, "m1", "metrics summaryMetrics")
    assert json.loads(run["metrics"]) == metrics and json.loads(run["summaryMetrics"]) == {"a": 3}


# ---- reads -------------------------------------------------------------------------------------


def test_projects_and_runs_newest_first(api: Client) -> None:
    older, newer = unique_name("proj"), unique_name("proj")
    api.upsert(older, "a", createdAt=100.0)
    api.upsert(older, "b", createdAt=200.0)
    time.sleep(0.01)
    api.upsert(newer, "c")
    projects = api.data("{ projects { name entityName runCount createdAt lastActivity } }")["projects"]
    names = [p["name"] for p in projects]
    assert names.index(newer) < names.index(older)
    mine = next(p for p in projects if p["name"] == older)
    assert (
        mine["runCount"] == 2
        and mine["entityName"] == api.entity
        and mine["lastActivity"] >= mine["createdAt"]
    )
    query = """query ($p: String!) { project(name: $p) {
        all: runs { name } oldest: runs(order: "created_at") { name } one: runs(first: 1) { name } } }"""
    found = api.data(query, p=older)["project"]
    assert [r["name"] for r in found["all"]] == ["b", "a"]
    assert [r["name"] for r in found["oldest"]] == ["a", "b"]
    assert [r["name"] for r in found["one"]] == ["b"]


def test_absent_project_and_run_are_null(api: Client, project: str) -> None:
    assert api.data('{ project(name: "no-such-project") { name } }')["project"] is None
    api.upsert(project, "exists")
    assert api.run(project, "absent", "name") is None


def test_run_timestamps_and_counters(api: Client, project: str) -> None:
    before = time.time()
    api.upsert(project, "t1")
    assert api.stream(project, "t1", history_post(0, rows(range(5), _runtime=2.5))).status_code == 200
    run = api.run(project, "t1", "createdAt updatedAt heartbeatAt runtime historyLineCount lastStep exitCode")
    assert before - 1 <= run["createdAt"] <= run["updatedAt"] == run["heartbeatAt"] <= time.time() + 1
    assert (run["runtime"], run["historyLineCount"], run["lastStep"], run["exitCode"]) == (2.5, 5, 4, None)


# ---- history -------------------------------------------------------------------------------


def test_history_full_keys_samples_and_step_range(api: Client, project: str) -> None:
    api.upsert(project, "h1")
    lines = [json.dumps({"_step": s, "loss": s, **({"val": s} if s % 10 == 0 else {})}) for s in range(100)]
    assert api.stream(project, "h1", history_post(0, lines)).status_code == 200
    run = api.run(
        project,
        "h1",
        """full: history
           keyed: history(keys: ["val"])
           sampled: history(samples: 5)
           ranged: history(minStep: 10, maxStep: 12)
           both: history(samples: 3, minStep: 50)""",
    )
    assert jsonutil.loads(run["full"]) == [json.loads(line) for line in lines]
    assert jsonutil.loads(run["keyed"]) == [{"_step": s, "val": s} for s in range(0, 100, 10)]
    sampled = steps_of(run["sampled"])
    assert len(sampled) == 5 and sampled[0] == 0 and sampled[-1] == 99
    assert steps_of(run["ranged"]) == [10, 11, 12]
    assert steps_of(run["both"]) == [50, 75, 99]


def test_nan_and_infinity_survive_as_tokens(api: Client, project: str) -> None:
    api.upsert(project, "n1")
    line = '{"_step": 0, "a": NaN, "b": Infinity, "c": -Infinity}'
    assert api.stream(project, "n1", history_post(0, [line])).status_code == 200
    run = api.run(project, "n1", 'history keyed: history(keys: ["a"])')
    assert "NaN" in run["history"] and "-Infinity" in run["history"]
    row = jsonutil.loads(run["history"])[0]
    assert math.isnan(row["a"]) and row["b"] == math.inf and row["c"] == -math.inf
    assert run["keyed"] == '[{"_step":0,"a":NaN}]'


def test_a_resent_post_replaces_instead_of_duplicating(api: Client, project: str) -> None:
    api.upsert(project, "d1")
    for _ in range(2):
        assert api.stream(project, "d1", history_post(0, rows(range(10)))).status_code == 200
    assert api.run(project, "d1", "historyLineCount")["historyLineCount"] == 10
    # Overlapping: lines 5..14 again, the overlap with new values.
    assert api.stream(project, "d1", history_post(5, rows(range(5, 15), retry=True))).status_code == 200
    run = api.run(project, "d1", "historyLineCount history")
    history = jsonutil.loads(run["history"])
    assert run["historyLineCount"] == 15 and [r["_step"] for r in history] == list(range(15))
    assert [r.get("retry", False) for r in history] == [False] * 5 + [True] * 10


def test_summary_output_and_events_from_the_stream(api: Client, project: str) -> None:
    api.upsert(project, "s1")
    post = {
        "files": {
            "wandb-summary.json": {"offset": 0, "content": ['{"loss": 1}', '{"loss": 0.5, "acc": NaN}']},
            "output.log": {"offset": 0, "content": ["line 0", "line 1", "line 2"]},
            "wandb-events.jsonl": {"offset": 0, "content": ['{"cpu": 12.5}']},
            "wandb-metadata.json": {"offset": 0, "content": ["ignored"]},
        },
        "uploaded": ["config.yaml"],
        "preempting": False,
    }
    response = api.stream(project, "s1", post)
    assert response.status_code == 200 and response.json() == {"exitcode": None, "limits": {}}
    api.stream(project, "s1", {"files": {"output.log": {"offset": 1, "content": ["LINE 1"]}}})
    run = api.run(project, "s1", "summaryMetrics output tail: output(offset: 2, limit: 5) events")
    summary = jsonutil.loads(run["summaryMetrics"])
    assert summary["loss"] == 0.5 and math.isnan(summary["acc"])
    assert run["output"] == ["line 0", "LINE 1", "line 2"] and run["tail"] == ["line 2"]
    assert run["events"] == ['{"cpu": 12.5}']


@pytest.mark.parametrize(("exitcode", "state"), [(0, "finished"), (1, "failed")])
def test_complete_finishes_the_run(api: Client, project: str, exitcode: int, state: str) -> None:
    api.upsert(project, "c1")
    response = api.stream(project, "c1", history_post(0, rows(range(3)), complete=True, exitcode=exitcode))
    assert response.status_code == 200
    assert api.run(project, "c1", "state exitCode historyLineCount") == {
        "state": state,
        "exitCode": exitcode,
        "historyLineCount": 3,
    }


def test_a_large_post_is_ingested_whole(api: Client, project: str) -> None:
    api.upsert(project, "big")
    lines = rows(range(20_000), acc=0.5, lr=1e-3)
    assert api.stream(project, "big", history_post(0, lines)).status_code == 200
    run = api.run(project, "big", "historyLineCount lastStep sampled: history(samples: 1000)")
    assert (run["historyLineCount"], run["lastStep"]) == (20_000, 19_999)
    assert len(steps_of(run["sampled"])) == 1000


# ---- files ---------------------------------------------------------------------------------


def test_run_files_upload_to_signed_urls_and_download(files_api: Client, project: str) -> None:
    files_api.upsert(project, "f1")
    query = """mutation ($input: CreateRunFilesInput!) {
        createRunFiles(input: $input) { runID uploadHeaders files { name uploadUrl } } }"""
    names = ["config.yaml", "media/images/chart_0.png"]
    created = files_api.data(query, input={"project": project, "run": "f1", "files": names})["createRunFiles"]
    assert created["runID"] == f"{files_api.entity}/{project}/f1" and created["uploadHeaders"] == []
    contents = {"config.yaml": b"lr: 0.1\n", "media/images/chart_0.png": bytes(range(256)) * 40}
    for file in created["files"]:
        # No Authorization: W&B clients PUT to signed URLs as they would to cloud storage.
        response = requests.put(file["uploadUrl"], data=contents[file["name"]], timeout=30)
        assert response.status_code == 200, response.text
    # A second upload of a name replaces the file.
    contents["config.yaml"] = b"lr: 0.2\n"
    assert requests.put(created["files"][0]["uploadUrl"], data=contents["config.yaml"], timeout=30).ok
    files = files_api.run(project, "f1", "files { name sizeBytes url updatedAt }")["files"]
    assert [(f["name"], f["sizeBytes"]) for f in files] == [(n, len(contents[n])) for n in sorted(names)]
    for file in files:
        downloaded = files_api.session.get(file["url"], timeout=30)
        assert downloaded.status_code == 200 and downloaded.content == contents[file["name"]]


def test_a_run_file_is_always_a_sandboxed_download(files_api: Client, project: str) -> None:
    """A saved page must not run script on the UI's origin when someone opens its URL."""
    files_api.upsert(project, "f2")
    query = """mutation ($input: CreateRunFilesInput!) {
        createRunFiles(input: $input) { files { name uploadUrl } } }"""
    name = "report/page.html"
    created = files_api.data(query, input={"project": project, "run": "f2", "files": [name]})[
        "createRunFiles"
    ]
    page = b"<script>alert(1)</script>"
    assert requests.put(created["files"][0]["uploadUrl"], data=page, timeout=30).ok
    downloaded = files_api.session.get(
        f"{files_api.url}/files/{files_api.entity}/{project}/f2/{name}", timeout=30
    )
    assert downloaded.status_code == 200 and downloaded.content == page
    assert downloaded.headers["Content-Disposition"].startswith('attachment; filename="page.html"')
    assert downloaded.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert downloaded.headers["X-Content-Type-Options"] == "nosniff"


def test_create_run_files_for_an_absent_run_is_not_found(api: Client, project: str) -> None:
    query = (
        'mutation ($p: String!) { createRunFiles(input: {project: $p, run: "nope", files: ["a"]}) { runID } }'
    )
    body = api.graphql(query, p=project).json()
    assert body["data"]["createRunFiles"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


# ---- GraphQL as a protocol -----------------------------------------------------------------


def test_named_operations_and_an_unknown_operation(api: Client) -> None:
    document = "query A { viewer { entity } } query B { serverInfo { features { name } } }"
    chosen = api.session.post(
        f"{api.url}/graphql", json={"query": document, "operationName": "B"}, timeout=10
    )
    assert chosen.status_code == 200 and "serverInfo" in chosen.json()["data"]
    unknown = api.session.post(
        f"{api.url}/graphql", json={"query": document, "operationName": "C"}, timeout=10
    )
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_introspection_works_despite_the_depth_limit(api: Client) -> None:
    from graphql import get_introspection_query

    response = api.session.post(f"{api.url}/graphql", json={"query": get_introspection_query()}, timeout=30)
    assert response.status_code == 200
    assert "upsertBucket" in response.text


def test_queries_up_to_the_depth_limit_run(api: Client, project: str) -> None:
    api.upsert(project, "deep")
    # with project(): 10 fields deep; first: 1, as unbounded runs in runs would be over the cost limit
    fields = "runs(first: 1) { project { " * 4 + "name" + " } }" * 4
    data = api.data("query ($p: String!) { project(name: $p) { " + fields + " } }", p=project)
    for _ in range(4):
        data = data["project"]["runs"][0]
    assert data["project"]["name"] == project

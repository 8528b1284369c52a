"""Run management against a real `nbtrack server`, on SQLite and PostgreSQL: runs renamed, their
notes and tags edited and runs deleted through nbtrack.Api (upsertBucket by id, deleteRun) and
through the real wandb client's `Run.delete()`; a deleted run leaves no row and no file; another
entity's key can do neither; a run still running is refused unless forced, and once forced its
client's later writes are refused instead of bringing half a run back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import nbtrack
from nbtrack.api import RunNotFoundError, StoredRun
from nbtrack.online.retry import Rejected
from tests import serving
from tests import test_wandb_client as wandb_base
from tests.run_rows import rows_of_run, run_pk
from tests.serving import Client, ServerProcess
from tests.wandb_client import WandbEnv

env = wandb_base.env  # the real wandb client against a fresh server, on SQLite and PostgreSQL

FILES = """mutation F($input: CreateRunFilesInput!) {
    createRunFiles(input: $input) { files { name uploadUrl } } }"""
ALERT = """mutation A($p: String!, $r: String!) { notifyScriptableRunAlert(
    input: {projectName: $p, runName: $r, title: "t", text: "x", severity: WARN}) { success } }"""
EXPORT = """query E($p: String!, $r: String!) { project(name: $p) { run(name: $r) {
    parquetHistory(liveKeys: []) { parquetUrls } } } }"""


@pytest.fixture(params=["sqlite", "postgres", "sqlite+s3"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    database, _, backend = request.param.partition("+")
    if database == "postgres" and not serving.POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL")
    server = serving.start_server(
        tmp_path,
        db_url=serving.POSTGRES_URL if database == "postgres" else None,
        files=serving.files_on(backend or "folder"),
    )
    yield server
    server.stop()


def _db_url(server: ServerProcess) -> str:
    if server.db_url is not None:
        return server.db_url
    assert server.dir is not None
    return f"sqlite:///{server.dir / 'nbtrack.db'}"


def _client(server: ServerProcess) -> Client:
    entity = serving.unique_name("ent")
    return Client(server.url, entity, serving.create_key(server, entity))


def _full_run(client: Client, project: str, run: str, state: str = "finished") -> None:
    """A run with every kind of row and file: history (and so its rollup), console lines, system
    metrics, summary, an alert, an uploaded file and a history export."""
    client.upsert(project, run, displayName="before", tags=["a"])
    history = [json.dumps({"_step": i, "loss": 1 / (i + 1), "_runtime": i}) for i in range(50)]
    body = {
        "files": {
            "wandb-history.jsonl": {"offset": 0, "content": history},
            "wandb-summary.json": {"offset": 0, "content": ['{"loss": 0.02}']},
            "output.log": {"offset": 0, "content": ["line 0", "line 1"]},
            "wandb-events.jsonl": {"offset": 0, "content": ['{"cpu": 12.5}']},
        },
    }
    if state != "running":
        body["complete"], body["exitcode"] = True, 0
    assert client.stream(project, run, body).ok
    assert client.data(ALERT, p=project, r=run)["notifyScriptableRunAlert"]["success"] is True
    files = client.data(FILES, input={"project": project, "run": run, "files": ["media/a.png"]})
    assert requests.put(files["createRunFiles"]["files"][0]["uploadUrl"], data=b"png", timeout=30).ok
    urls = client.data(EXPORT, p=project, r=run)["project"]["run"]["parquetHistory"]["parquetUrls"]
    assert requests.get(urls[0], timeout=30).ok  # the export is written and kept under <files>/~history


def _run_files(server: ServerProcess, entity: str, project: str, run: str) -> list[str]:
    """The run's files and history exports, in the server's folder or bucket."""
    return [key for key in server.stored_files() if f"{entity}/{project}/{run}/" in key]


def test_a_run_renamed_edited_and_deleted_through_the_api_leaves_no_row_and_no_file(
    served: ServerProcess,
) -> None:
    client = _client(served)
    project = serving.unique_name("p")
    _full_run(client, project, "gone")
    _full_run(client, project, "kept")
    api = nbtrack.Api(base_url=served.url, api_key=client.key)
    run = api.run(f"{client.entity}/{project}/gone")
    run.name = "after"
    run.notes = "two\nlines"
    run.tags.append("best")
    run.update()
    assert (run.name, run.notes, run.tags) == ("after", "two\nlines", ["a", "best"])
    again = nbtrack.Api(base_url=served.url, api_key=client.key).run(f"{client.entity}/{project}/gone")
    assert (again.name, again.notes, again.tags, again.state) == (
        "after",
        "two\nlines",
        ["a", "best"],
        "finished",
    )
    assert len(again.history()) == 50  # an edit changes nothing else

    url = _db_url(served)
    pk = run_pk(url, client.entity, project, "gone")
    assert set(rows_of_run(url, pk, "gone")) >= {
        "runs",
        "history",
        "history_rollup",
        "output",
        "events",
        "alerts",
    }
    assert len(_run_files(served, client.entity, project, "gone")) >= 2  # the upload and the export
    again.delete()
    assert rows_of_run(url, pk, "gone") == {}
    assert _run_files(served, client.entity, project, "gone") == []
    with pytest.raises(RunNotFoundError):
        api.run(f"{client.entity}/{project}/gone")
    # the other run of the project is whole
    kept = api.run(f"{client.entity}/{project}/kept")
    assert len(kept.history()) == 50 and len(_run_files(served, client.entity, project, "kept")) >= 2
    # a second delete, or an edit of the deleted run, says it is not there (an edit never recreates it)
    with pytest.raises(Rejected, match="does not exist"):
        again.delete()
    run.name = "ghost"
    with pytest.raises(Rejected, match="does not exist"):
        run.update()
    assert rows_of_run(url, pk, "gone") == {}


def test_another_entity_cannot_rename_or_delete_a_run(served: ServerProcess) -> None:
    owner, other = _client(served), _client(served)
    project = serving.unique_name("p")
    _full_run(owner, project, "mine")
    path = f"{owner.entity}/{project}/mine"
    intruder = nbtrack.Api(base_url=served.url, api_key=other.key)
    with pytest.raises(RunNotFoundError):
        intruder.run(path)  # not even visible
    seen = nbtrack.Api(base_url=served.url, api_key=owner.key).run(path)
    stolen = StoredRun(seen.row, intruder._source, editor=intruder._editor)
    stolen.name = "pwned"
    with pytest.raises(Rejected, match="not yours"):
        stolen.update()
    with pytest.raises(Rejected, match="not yours"):
        stolen.delete(force=True)
    rename = (
        """mutation R($id: String!) { upsertBucket(input: {id: $id, displayName: "x"}) { bucket { id } } }"""
    )
    for query in (rename, "mutation D($id: ID!) { deleteRun(input: {id: $id}) { clientMutationId } }"):
        errors = other.graphql(query, id=path).json()["errors"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND" and "not yours" in errors[0]["message"], errors
    still = nbtrack.Api(base_url=served.url, api_key=owner.key).run(path)
    assert still.name == "before" and len(still.history()) == 50


def test_a_running_run_is_refused_unless_forced_and_then_its_client_is_refused(served: ServerProcess) -> None:
    client = _client(served)
    project = serving.unique_name("p")
    live = serving.unique_name("live")  # unique: the database may hold deleted runs of other tests
    _full_run(client, project, live, state="running")
    api = nbtrack.Api(base_url=served.url, api_key=client.key)
    run = api.run(f"{client.entity}/{project}/{live}")
    with pytest.raises(Rejected, match="still running: finish it first, or delete it with force"):
        run.delete()
    assert api.run(f"{client.entity}/{project}/{live}").state == "running"
    url = _db_url(served)
    pk = run_pk(url, client.entity, project, live)
    files = client.data(FILES, input={"project": project, "run": live, "files": ["late.txt"]})
    run.delete(force=True)
    late = requests.put(files["createRunFiles"]["files"][0]["uploadUrl"], data=b"late", timeout=30)
    assert late.status_code == 404 and "does not exist" in late.text  # a URL signed before the delete
    left = rows_of_run(url, pk, live)
    # Only its name is kept, in deleted_runs, so the client still sending is refused by name.
    assert list(left) == ["deleted_runs"] and len(left["deleted_runs"]) == 1, left
    assert _run_files(served, client.entity, project, live) == []
    later = client.stream(
        project, live, {"files": {"wandb-history.jsonl": {"offset": 50, "content": ['{"_step": 50}']}}}
    )
    assert later.status_code == 404 and "does not exist" in later.text
    upsert = client.graphql(
        "mutation U($p: String!, $n: String!) { upsertBucket(input: "
        '{name: $n, project: $p, config: "{}"}) { inserted } }',
        p=project,
        n=live,
    )
    errors = upsert.json()["errors"]
    assert errors[0]["extensions"]["code"] == "CONFLICT", errors
    assert "was deleted while it was running" in errors[0]["message"], errors
    with pytest.raises(RunNotFoundError):
        api.run(f"{client.entity}/{project}/{live}")
    assert set(rows_of_run(url, pk, live)) == {"deleted_runs"}


DELETE = """
import os, wandb
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
run = wandb.init(project="wb")
run.log({"loss": 1.0})
run.finish()
api.run(os.environ["WANDB_ENTITY"] + "/wb/" + run.id).delete()
fresh = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
emit({"id": run.id, "left": [r.id for r in fresh.runs(os.environ["WANDB_ENTITY"] + "/wb")]})
"""


def test_the_wandb_clients_run_delete_deletes_the_run(env: WandbEnv) -> None:
    out = env.run(DELETE)
    assert out["left"] == []
    with pytest.raises(RunNotFoundError):
        nbtrack.Api(base_url=env.server.url, api_key=env.key).run(f"{env.entity}/wb/{out['id']}")

"""Runs started without a name get a readable one (adjective-noun-number), made from the run's id:
nbtrack's own init() in every mode, `nbtrack sync`, and a run a W&B client creates on the server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import nbtrack
from nbtrack.run_names import ADJECTIVES, NOUNS, readable_name
from nbtrack.settings import store_url
from nbtrack.sync import sync_log
from tests import serving
from tests.serving import ServerProcess, create_key, unique_name

server, pg_server = serving.server, serving.pg_server  # the fixtures

NAME = re.compile(r"[a-z]+-[a-z]+-\d{1,3}")


def test_a_name_is_readable_and_the_same_for_the_same_id() -> None:
    names = {readable_name(f"run{i}") for i in range(2000)}
    assert all(NAME.fullmatch(name) for name in names)
    assert len(names) > 1990  # few clashes among a project's runs
    assert readable_name("abc123") == readable_name("abc123") != readable_name("abc124")
    assert len(set(ADJECTIVES)) == len(ADJECTIVES) and len(set(NOUNS)) == len(NOUNS)
    adjective, noun, number = readable_name("abc123").split("-")
    assert adjective in ADJECTIVES and noun in NOUNS and 1 <= int(number) <= 140


def test_local_runs_without_a_name_get_a_readable_one(root: Path) -> None:
    with nbtrack.init(project="p", dir=root) as run:
        run.log({"x": 1})
    assert run.name == readable_name(run.id) and NAME.fullmatch(run.name)
    with nbtrack.init(project="p", dir=root, name="mine") as named:
        pass
    api = nbtrack.Api(dir=root)
    assert api.run(f"p/{run.id}").name == run.name
    assert api.run(f"p/{named.id}").name == "mine"


def test_a_resumed_run_keeps_its_stored_name(root: Path) -> None:
    with nbtrack.init(project="p", dir=root, id="keep", name="given"):
        pass
    with nbtrack.init(project="p", dir=root, id="keep", resume="must") as resumed:
        pass
    assert resumed.name == "given" and nbtrack.Api(dir=root).run("p/keep").name == "given"


def test_an_offline_runs_name_arrives_with_sync(root: Path) -> None:
    with nbtrack.init(project="p", dir=root, mode="offline") as run:
        run.log({"x": 1})
    assert sync_log(next(run.dir.glob("*.nbt")), store_url(root)).error is None
    assert nbtrack.Api(dir=root).run(f"p/{run.id}").name == readable_name(run.id)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_online_runs_and_runs_a_wandb_client_creates_get_one(
    database: str, root: Path, request: pytest.FixtureRequest
) -> None:
    served: ServerProcess = request.getfixturevalue("server" if database == "sqlite" else "pg_server")
    entity = unique_name("names")
    key = create_key(served, entity)
    project = unique_name("p")
    with nbtrack.init(project=project, dir=root, base_url=served.url, api_key=key) as run:
        pass
    api = nbtrack.Api(base_url=served.url, api_key=key)
    assert api.run(f"{entity}/{project}/{run.id}").name == readable_name(run.id)

    # upsertBucket without a displayName (what the wandb client sends for a run without a name).
    client = serving.Client(served.url, entity, key)
    created = client.upsert(project, "wb-run")
    assert created["inserted"] and created["bucket"]["displayName"] == readable_name("wb-run")
    # A later upsert without one (the client's second, run.update()) keeps it; one with a name sets it.
    assert client.upsert(project, "wb-run", notes="n")["bucket"]["displayName"] == readable_name("wb-run")
    assert client.upsert(project, "wb-run", displayName="named")["bucket"]["displayName"] == "named"
    assert client.upsert(project, "wb-run", notes="m")["bucket"]["displayName"] == "named"
    assert client.upsert(project, "given", displayName="given name")["bucket"]["displayName"] == "given name"

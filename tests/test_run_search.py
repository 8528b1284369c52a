"""Searching runs across projects (store/run_search.py and GraphQL's Query.searchRuns).

The store's answer is checked against the meaning written in run_search.py's docstring, computed
here over the same runs, on SQLite and (with NBTRACK_TEST_POSTGRES_URL) PostgreSQL; the server's
query through a real `nbtrack server`, bounds and refusals included.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbtrack.store import Store
from nbtrack.store.run_search import search_runs
from tests.serving import POSTGRES_URL, Client, create_key, start_server, unique_name

# (project, run id, fields): what each run holds that a word may or may not find.
RUNS: list[tuple[str, str, dict[str, Any]]] = [
    ("vision", "r1", {"display_name": "Brisk-Sun", "config": {"opt": "adam", "lr": 0.01}, "tags": ["base"]}),
    ("vision", "r2", {"display_name": "calm-sea", "config": {"opt": "SGD", "lr": 0.1}, "tags": ["sweep"]}),
    ("speech", "r3", {"display_name": "brisk-moon", "config": {"nest": {"deep": "Adam-W"}, "lr": math.nan}}),
    ("speech", "r4", {"config": {"adam_key": 1, "lr": 0.001, "_wandb": {"cli_version": "adam"}}}),
    ("speech", "r5", {"display_name": "100%_done", "config": {"path": 'C:\\data "x"'}, "tags": ["Ärger"]}),
    ("text", "Ünique", {"config": {"flag": True, "n": None, "list": [3, "kappa"]}}),
]
QUERIES: dict[str, list[str]] = {
    "adam": ["r3", "r1"],  # a value at any depth, case ignored; not a key, nor the client's entry
    "brisk": ["r3", "r1"],  # display names
    "BRISK sun": ["r1"],  # every word
    "r2": ["r2"],  # an id
    "sweep": ["r2"],  # a tag
    "0.01": ["r1"],  # a number as its JSON text (r4's 0.001 does not hold it)
    "nan": ["r3"],  # NaN as nbtrack writes it
    "true": ["Ünique"],
    "null": ["Ünique"],
    "kappa": ["Ünique"],  # inside a list
    "100%": ["r5"],  # LIKE's wildcards are plain characters
    "%_": ["r5"],
    "_": ["r5"],  # not "any one character", and not the client's "_wandb" key either
    'data "x"': ["r5"],  # a quote and a backslash, escaped in the stored JSON
    "c:\\": ["r5"],
    "ärger": [],  # ASCII case only: Ä is not ä
    "Ärger": ["r5"],
    "ünique": [],
    "Ünique": ["Ünique"],
    "nothing-here": [],
    "adam_key": [],  # a config key
}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = Store.at_root(tmp_path / "root")
    else:
        if not POSTGRES_URL:
            pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the store tests on PostgreSQL")
        opened = Store(POSTGRES_URL)
    yield opened
    opened.close()


def _fill(store: Store, entity: str) -> None:
    for i, (project, run_id, fields) in enumerate(RUNS):
        store.upsert_run(entity, project, run_id, created_at=1000.0 + i, **fields)


@pytest.mark.parametrize("text", list(QUERIES))
def test_search_finds_the_runs_whose_values_hold_every_word(store: Store, text: str) -> None:
    entity = f"e-{uuid.uuid4().hex[:8]}"
    _fill(store, entity)
    store.upsert_run(f"{entity}-other", "vision", "r9", config={"opt": "adam"})  # another entity's
    found = search_runs(store, entity, text, 50)
    assert [run.run_id for run in found] == QUERIES[text], text
    assert all(run.entity == entity for run in found)


def test_search_stops_at_the_limit_newest_first(store: Store) -> None:
    entity = f"e-{uuid.uuid4().hex[:8]}"
    for i in range(30):
        # Every run's config names the word as a key: candidates SQL cannot rule out.
        config = {"adam": 1} if i % 2 else {"opt": "adam"}
        store.upsert_run(entity, f"p{i % 3}", f"run{i:02d}", created_at=1000.0 + i, config=config)
    found = search_runs(store, entity, "adam", 4)
    assert [run.run_id for run in found] == ["run28", "run26", "run24", "run22"]
    assert [run.project for run in found] == ["p1", "p2", "p0", "p1"]
    assert search_runs(store, entity, "   ", 4) == []


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    if request.param == "postgresql" and not POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL")
    db_url = POSTGRES_URL if request.param == "postgresql" else None
    server = start_server(tmp_path_factory.mktemp("search"), db_url=db_url)
    entity = unique_name("ent") if db_url else None
    client = Client(server.url, entity, create_key(server, entity)) if entity else Client(server.url)
    yield client
    server.stop()
    assert "Traceback" not in server.log(), server.log_tail()


SEARCH = """query Search($text: String!, $first: Int) {
  searchRuns(text: $text, first: $first) { name displayName project { name entityName } }
}"""


def test_search_runs_over_graphql_links_each_hit_to_its_project(api: Client) -> None:
    word = unique_name("word")
    projects = [unique_name("pa"), unique_name("pb")]
    api.upsert(projects[0], "one", displayName=f"{word}-one", config='{"lr": {"value": 0.5}}')
    api.upsert(projects[1], "two", tags=[word], config='{"lr": {"value": 0.25}}')
    api.upsert(projects[1], "three", config='{"opt": {"value": "sgd"}}')
    hits = api.data(SEARCH, text=word)["searchRuns"]
    found = [(hit["name"], hit["project"]["name"]) for hit in hits]
    assert found == [("two", projects[1]), ("one", projects[0])]
    assert {hit["project"]["entityName"] for hit in hits} == {api.entity}
    assert [hit["name"] for hit in api.data(SEARCH, text=word, first=1)["searchRuns"]] == ["two"]
    assert [hit["name"] for hit in api.data(SEARCH, text=f"{word} 0.25")["searchRuns"]] == ["two"]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"text": "x", "first": 0}, "searchRuns(first:) must be 1 to 200, not 0"),
        ({"text": "x", "first": 201}, "searchRuns(first:) must be 1 to 200, not 201"),
        ({"text": "  "}, "searchRuns(text:) has no word to look for"),
    ],
)
def test_search_runs_refuses_a_bad_bound_or_a_blank_text(
    api: Client, variables: dict[str, Any], message: str
) -> None:
    body = api.graphql(SEARCH, **variables).json()
    assert body["errors"][0]["message"] == message


def test_a_search_asking_for_too_many_fields_per_run_costs_too_much(api: Client) -> None:
    # 200 runs, each with its history: over the cost limit, refused before any read.
    query = '{ searchRuns(text: "x", first: 200) { name history(samples: 100) } }'
    body = api.graphql(query).json()
    assert "cost" in body["errors"][0]["message"], body

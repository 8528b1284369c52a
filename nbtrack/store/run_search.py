"""Runs found by text across every project of an entity: the UI's "search runs" box.

    from nbtrack.store.run_search import search_runs
    found = search_runs(store, "local", "adam 0.01", limit=50)   # newest first, at most 50

A run matches when every word of the text (split on whitespace) is part of its id, its display
name, one of its tags or one of its config values (at any depth; numbers, booleans and null as
their JSON text, so "0.01" finds lr=0.01). Config keys do not match, nor does the W&B client's own
config entry. Case is ignored for ASCII letters only: that is what SQLite's lower() folds, and the
answer must not depend on the database.

SQL narrows the runs with LIKE on the stored text (a superset: the config's JSON text also holds
its keys), newest first, read a batch at a time; Python keeps the runs that really match and stops
as soon as it has `limit` of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, or_, select

from nbtrack import jsonutil
from nbtrack.store.queries import RUN_JOIN
from nbtrack.store.schema import RunRow, decode_run, entities, projects, runs
from nbtrack.store.store import Store
from nbtrack.vocabulary import CLIENT_CONFIG_KEY

__all__ = ["run_matches", "search_runs", "search_words"]

_BATCH = 200  # candidate rows fetched at a time: a match found early stops the read early
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def search_words(text: str) -> list[str]:
    """The words a search text looks for, case folded; [] for a blank text."""
    return [_fold(word) for word in text.split()]


def _json_inner(word: str) -> str:
    """The word as it is written inside a JSON string (a quote or a backslash escaped)."""
    return json.dumps(word, ensure_ascii=False)[1:-1]


def _may_match(word: str) -> ColumnElement[bool]:
    """Runs whose stored text holds the word somewhere it may count (never fewer than match)."""
    texts = [runs.c.run_id, func.coalesce(runs.c.display_name, ""), runs.c.tags, runs.c.config]
    # Both sides through the database's lower(): PostgreSQL's also folds letters beyond ASCII, and
    # must fold the word's the same way, or it would leave out a run Python keeps.
    patterns = [func.lower(literal(f"%{_like_escaped(form)}%")) for form in {word, _json_inner(word)}]
    return or_(*(func.lower(text).like(pattern, escape="/") for text in texts for pattern in patterns))


def _like_escaped(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _values(value: Any) -> Iterator[str]:
    """The texts of a config value's leaves (dict keys left out)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _values(item)
    elif isinstance(value, str):
        yield value
    else:
        yield jsonutil.dumps_str(value)


def run_matches(run: RunRow, words: list[str]) -> bool:
    """Whether every word is part of the run's id, display name, a tag or a config value."""
    config = {key: value for key, value in run.config.items() if key != CLIENT_CONFIG_KEY}
    texts = [run.run_id, run.display_name or "", *run.tags, *_values(config)]
    folded = [_fold(text) for text in texts]
    return all(any(word in text for text in folded) for word in words)


def search_runs(store: Store, entity: str, text: str, limit: int) -> list[RunRow]:
    """Up to limit runs of the entity's projects that match text, newest first."""
    words = search_words(text)
    if not words or limit <= 0:
        return []
    stmt = (
        select(entities.c.name.label("entity"), projects.c.name.label("project"), runs)
        .select_from(RUN_JOIN)
        .where(entities.c.name == entity, and_(*(_may_match(word) for word in words)))
        .order_by(runs.c.created_at.desc(), runs.c.pk.desc())
        .execution_options(yield_per=_BATCH)  # PostgreSQL: a server-side cursor, read in batches
    )
    found: list[RunRow] = []
    with store._read() as conn:
        for row in conn.execute(stmt):
            run = decode_run(row)
            if run_matches(run, words):
                found.append(run)
                if len(found) == limit:
                    break
    return found

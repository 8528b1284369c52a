"""Every row of the store that belongs to a run, found through the schema (so a table added later
is looked in too): by the run's primary key in any column that refers to runs.pk (or is named
run_pk), and by the run's id in every text column of the tables that hold no run key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, Text, create_engine, or_, select

from nbtrack.store.schema import metadata, runs


def run_pk(url: str, entity: str, project: str, run_id: str) -> int:
    """The run's primary key (it must exist)."""
    from nbtrack.store.queries import RUN_JOIN, run_filter

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            pk = conn.scalar(
                select(runs.c.pk).select_from(RUN_JOIN).where(*run_filter(entity, project, run_id))
            )
    finally:
        engine.dispose()
    assert pk is not None, f"no run {entity}/{project}/{run_id} in {url}"
    return int(pk)


def rows_of_run(url: str, pk: int, run_id: str) -> dict[str, list[Any]]:
    """{table: rows} of every row naming the run, by key or by id; {} when none is left."""
    found: dict[str, list[Any]] = {}
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                keyed = [
                    column
                    for column in table.columns
                    if column.name == "run_pk"
                    or any(key.column is runs.c.pk for key in column.foreign_keys)
                    or column is runs.c.pk
                ]
                if keyed:
                    condition = or_(*(column == pk for column in keyed))
                else:
                    texts = [c for c in table.columns if isinstance(c.type, (String, Text))]
                    if not texts:
                        continue
                    condition = or_(*(column.contains(run_id, autoescape=True) for column in texts))
                rows = conn.execute(select(table).where(condition)).all()
                if rows:
                    found[table.name] = [tuple(row) for row in rows]
    finally:
        engine.dispose()
    return found

"""Editing and deleting a run on a tracking server: the mutations W&B's own client sends.

An edit is upsertBucket with the run's id ("entity/project/run_id", W&B's bucket id), as wandb's
`Run.update()` sends it; a delete is deleteRun, as wandb's `Run.delete()` sends it, with nbtrack's
`force` for a run still running. The server checks that the key's entity owns the run.
"""

from __future__ import annotations

from collections.abc import Sequence

from nbtrack.online.reader import ServerReader, run_row
from nbtrack.store.schema import RunRow

__all__ = ["ServerRunEditor"]

UPDATE = """mutation UpsertBucket($id: String!, $displayName: String, $notes: String, $tags: [String!]) {
  upsertBucket(input: {id: $id, displayName: $displayName, notes: $notes, tags: $tags}) {
    bucket { %s } } }"""
DELETE = """mutation DeleteRun($id: ID!, $force: Boolean) {
  deleteRun(input: {id: $id, force: $force}) { clientMutationId } }"""


class ServerRunEditor:
    """Run edits and deletes through one server's GraphQL API."""

    def __init__(self, reader: ServerReader) -> None:
        self._reader = reader

    def edit_run(
        self,
        entity: str,
        project: str,
        run_id: str,
        *,
        name: str | None,
        notes: str | None,
        tags: Sequence[str] | None,
    ) -> RunRow:
        variables = {
            "id": f"{entity}/{project}/{run_id}",
            "displayName": name,
            "notes": notes,
            "tags": None if tags is None else list(tags),
        }
        answer = self._reader.graphql(UPDATE % self._reader.run_fields, **variables)
        return run_row(answer["upsertBucket"]["bucket"])

    def delete_run(self, entity: str, project: str, run_id: str, *, force: bool) -> None:
        self._reader.graphql(DELETE, id=f"{entity}/{project}/{run_id}", force=force)

"""Reading runs from a tracking server with GraphQL, in the shapes the embedded store returns.

`ServerReader` answers the same questions as `nbtrack.store.Store` (projects, runs, one run, its
history), so `nbtrack.Api` reads a server and a local folder with one code path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from nbtrack import jsonutil
from nbtrack.online.client import ServerClient
from nbtrack.online.retry import RetryPolicy
from nbtrack.online.server_run import run_url
from nbtrack.store.schema import AlertRow, ProjectRow, RunRow

__all__ = ["ServerReader", "run_row"]

_RUN_FIELDS = """
  name displayName state config summaryMetrics metrics tags notes group jobType host program
  createdAt updatedAt runtime exitCode historyLineCount lastStep
  project { name entityName }
"""
PROJECTS = "query Projects($entity: String) { projects(entityName: $entity) { name entityName createdAt runCount lastActivity } }"  # noqa: E501
RUNS = f"""query Runs($project: String!, $entity: String) {{
  project(name: $project, entityName: $entity) {{ runs {{ {_RUN_FIELDS} }} }} }}"""
RUN = f"""query Run($project: String!, $entity: String, $run: String!) {{
  project(name: $project, entityName: $entity) {{ run(name: $run) {{ {_RUN_FIELDS} }} }} }}"""
HISTORY = """query History($project: String!, $entity: String, $run: String!, $keys: [String!]) {
  project(name: $project, entityName: $entity) { run(name: $run) { history(keys: $keys) } } }"""
OUTPUT = """query Output($project: String!, $entity: String, $run: String!, $offset: Int, $limit: Int) {
  project(name: $project, entityName: $entity) {
    run(name: $run) { output(offset: $offset, limit: $limit) } } }"""
EVENTS = """query Events($project: String!, $entity: String, $run: String!, $offset: Int, $limit: Int) {
  project(name: $project, entityName: $entity) {
    run(name: $run) { events(offset: $offset, limit: $limit) } } }"""
ALERTS = """query Alerts($project: String!, $entity: String, $run: String!) {
  project(name: $project, entityName: $entity) {
    run(name: $run) { alerts { title text severity createdAt } } } }"""

# A reader gives a busy or restarting server a little time, then says what is wrong.
READ_RETRY_SECONDS = 20.0


class ServerReader:
    """Runs on one tracking server, read through its GraphQL API."""

    run_fields = _RUN_FIELDS  # what run_row reads of a Run

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        self._client = ServerClient(base_url, api_key, policy=RetryPolicy(cap=5.0))
        self.base_url = self._client.base_url

    @property
    def client(self) -> ServerClient:
        """The HTTP client it reads with (artifact downloads stream through it)."""
        return self._client

    def close(self) -> None:
        self._client.close()

    def list_projects(self, entity: str | None = None) -> list[ProjectRow]:
        found = self._query(PROJECTS, entity=entity).get("projects") or []
        return [
            ProjectRow(
                entity=p["entityName"],
                name=p["name"],
                created_at=p["createdAt"],
                run_count=p["runCount"],
                last_activity=p["lastActivity"],
            )
            for p in found
        ]

    def list_runs(self, project: str, entity: str | None = None) -> list[RunRow]:
        found = self._query(RUNS, project=project, entity=entity).get("project") or {}
        return [run_row(run) for run in found.get("runs") or []]

    def get_run(self, entity: str | None, project: str, run_id: str) -> RunRow | None:
        found = self._query(RUN, project=project, entity=entity, run=run_id).get("project") or {}
        run = found.get("run")
        return run_row(run) if run else None

    def read_history(
        self, entity: str, project: str, run_id: str, keys: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        variables = {
            "project": project,
            "entity": entity,
            "run": run_id,
            "keys": list(keys) if keys else None,
        }
        run = (self._query(HISTORY, **variables).get("project") or {}).get("run")
        if not run:
            return []
        rows: list[dict[str, Any]] = jsonutil.loads(run["history"])
        return rows

    def read_output(
        self, entity: str, project: str, run_id: str, offset: int = 0, limit: int | None = None
    ) -> list[str]:
        """The run's console lines in line order (limit of them from line offset on)."""
        variables = {"project": project, "entity": entity, "run": run_id, "offset": offset, "limit": limit}
        run = (self._query(OUTPUT, **variables).get("project") or {}).get("run")
        return list(run["output"]) if run else []

    def read_events(
        self, entity: str, project: str, run_id: str, offset: int = 0, limit: int | None = None
    ) -> list[str]:
        """The run's system-metrics lines (JSON text) in line order."""
        variables = {"project": project, "entity": entity, "run": run_id, "offset": offset, "limit": limit}
        run = (self._query(EVENTS, **variables).get("project") or {}).get("run")
        return list(run["events"]) if run else []

    def read_alerts(self, entity: str, project: str, run_id: str) -> list[AlertRow]:
        """The run's alerts, oldest first."""
        variables = {"project": project, "entity": entity, "run": run_id}
        run = (self._query(ALERTS, **variables).get("project") or {}).get("run")
        return [
            AlertRow(title=a["title"], text=a["text"], level=a["severity"], created_at=a["createdAt"])
            for a in (run["alerts"] if run else [])
        ]

    def read_file(self, entity: str, project: str, run_id: str, name: str) -> bytes:
        """The bytes of one of the run's files (GET /files/...); Rejected (404) if there is none."""
        path = "/".join(quote(part, safe="") for part in (entity, project, run_id))
        url = f"/files/{path}/{quote(name, safe='/')}"
        deadline = time.monotonic() + READ_RETRY_SECONDS
        stop = threading.Event()
        response = self._client.retrying(lambda: self._client.get(url), stop=stop, deadline=deadline)
        return response.content

    def run_url(self, row: RunRow) -> str:
        return run_url(self.base_url, row.entity, row.project, row.run_id)

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        """Any GraphQL call (a mutation too: online/run_edits.py), retried while the server is busy."""
        return self._query(query, **variables)

    def _query(self, query: str, **variables: Any) -> dict[str, Any]:
        deadline = time.monotonic() + READ_RETRY_SECONDS
        return self._client.retrying(
            lambda: self._client.graphql(query, variables), stop=threading.Event(), deadline=deadline
        )


def run_row(run: dict[str, Any]) -> RunRow:
    return RunRow(
        entity=run["project"]["entityName"],
        project=run["project"]["name"],
        run_id=run["name"],
        display_name=run.get("displayName"),
        state=run["state"],
        config=_config(jsonutil.loads(run["config"])),
        summary=jsonutil.loads(run["summaryMetrics"]),
        metrics=jsonutil.loads(run["metrics"]),
        tags=list(run.get("tags") or []),
        notes=run.get("notes"),
        group=run.get("group"),
        job_type=run.get("jobType"),
        host=run.get("host"),
        program=run.get("program"),
        created_at=run["createdAt"],
        updated_at=run["updatedAt"],
        runtime=run["runtime"],
        exit_code=run.get("exitCode"),
        history_line_count=run["historyLineCount"],
        last_step=run.get("lastStep"),
    )


def _config(config: dict[str, Any]) -> dict[str, Any]:
    """Plain values from the wire's {"key": {"value": v}} form."""
    return {
        key: item["value"] if isinstance(item, dict) and "value" in item else item
        for key, item in config.items()
    }

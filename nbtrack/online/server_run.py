"""One run on a tracking server, and the calls that address it (one attempt each).

`UpsertBucket` creates the run or updates it (its config, its metrics, a crashed state); its
answer names the run's entity (the key's own, when the run named none) and how many history
lines the server holds. A config too large for the server's body limit goes without its largest
values (oversize.py), said once per key. A run file is uploaded with `CreateRunFiles`, which
gives its upload URL, and a PUT. The file stream's posts go to the run's address too
(`post_stream`; stream_sender.py makes them fit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbtrack import jsonutil
from nbtrack.online.client import ServerClient, graphql_body
from nbtrack.online.oversize import BodyLimit, LimitNotices, fit_object, posted_size
from nbtrack.online.retry import Rejected, TooLarge
from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["CREATE_RUN_FILES", "NOTIFY_ALERT", "UPSERT_BUCKET", "ServerRun", "run_url", "wrapped"]

UPSERT_BUCKET = """
mutation UpsertBucket($name: String, $project: String, $entity: String, $displayName: String,
    $notes: String, $groupName: String, $jobType: String, $tags: [String!], $config: JSONString,
    $summaryMetrics: JSONString, $host: String, $program: String, $state: String,
    $metrics: JSONString, $createdAt: Float) {
  upsertBucket(input: {name: $name, project: $project, entity: $entity, displayName: $displayName,
      notes: $notes, groupName: $groupName, jobType: $jobType, tags: $tags, config: $config,
      summaryMetrics: $summaryMetrics, host: $host, program: $program, state: $state,
      metrics: $metrics, createdAt: $createdAt}) {
    bucket { id name displayName historyLineCount project { id name entity { id name } } }
    inserted
  }
}
"""

CREATE_RUN_FILES = """
mutation CreateRunFiles($entity: String, $project: String!, $run: String!, $files: [String!]!) {
  createRunFiles(input: {entityName: $entity, project: $project, run: $run, files: $files}) {
    runID uploadHeaders files { name uploadUrl }
  }
}
"""

# W&B's mutation (the wandb client's run.alert), with nbtrack's createdAt and alertKey besides.
NOTIFY_ALERT = """
mutation NotifyScriptableRunAlert($entity: String, $project: String!, $run: String!, $title: String!,
    $text: String!, $severity: AlertSeverity = INFO, $wait: Duration, $createdAt: Float, $key: String) {
  notifyScriptableRunAlert(input: {entityName: $entity, projectName: $project, runName: $run,
      title: $title, text: $text, severity: $severity, waitDuration: $wait, createdAt: $createdAt,
      alertKey: $key}) {
    success
  }
}
"""


def run_url(base_url: str, entity: str, project: str, run_id: str) -> str:
    """The run's page in the server's web UI."""
    return f"{base_url}/{entity}/{project}/runs/{run_id}"


def wrapped(config: dict[str, Any]) -> str:
    """The config as W&B sends it: {"key": {"value": v}}."""
    return jsonutil.dumps_str({key: {"value": value} for key, value in config.items()})


class ServerRun:
    """The run `run` names, on the server `client` talks to. limit: what is known of the server's
    body limit (shared with the file stream); notices: how a value cut to fit it is said."""

    def __init__(
        self, client: ServerClient, run: pb.RunRecord, limit: BodyLimit, notices: LimitNotices
    ) -> None:
        self._client = client
        self._limit = limit
        self._notices = notices
        self.entity = run.entity  # "" until the server says whose key this is
        self.project, self.run_id = run.project, run.run_id

    @property
    def url(self) -> str | None:
        if not self.entity:
            return None
        return run_url(self._client.base_url, self.entity, self.project, self.run_id)

    def upsert(self, fields: dict[str, Any]) -> int | None:
        """UpsertBucket with these fields; the history lines the server holds, if it said."""
        variables = {"name": self.run_id, "project": self.project, "entity": self.entity or None, **fields}
        while True:
            if self._limit.bytes is not None:
                variables = self._fit_upsert(variables, self._limit.bytes)
            try:
                data = self._client.graphql(UPSERT_BUCKET, variables)
                break
            except TooLarge as exc:
                if not variables.get("config"):
                    raise  # only the config can be made smaller
                self._limit.learn(exc.sent, exc.limit)
        bucket = (data.get("upsertBucket") or {}).get("bucket") or {}
        entity = ((bucket.get("project") or {}).get("entity") or {}).get("name")
        if isinstance(entity, str) and entity:
            self.entity = entity
        lines = bucket.get("historyLineCount")
        return lines if isinstance(lines, int) else None

    def _fit_upsert(self, variables: dict[str, Any], limit: int) -> dict[str, Any]:
        """The upsert's variables with the config's largest values marked until the request fits."""
        size = len(graphql_body(UPSERT_BUCKET, variables))
        config = variables.get("config")
        if size <= limit:
            return variables
        fitted = None
        if isinstance(config, str):
            # Fitted unwrapped, so a marker stands for the value ({"key": {"value": marker}}) and
            # names its size; the wrapping costs the same few bytes a key before and after.
            plain = jsonutil.dumps_str({key: item["value"] for key, item in jsonutil.loads(config).items()})
            wrapping = posted_size(config) - posted_size(plain)
            reason = f"too large for the tracking server ({self._limit.describe()})"
            fitted = fit_object(plain, posted_size(config) + limit - size - wrapping, reason)
        if fitted is None:
            raise Rejected(
                f"updating the run takes {size} bytes, more than the tracking server takes "
                f"({self._limit.describe()})",
                413,
            )
        self._notices.dropped("config", fitted[1])
        return {**variables, "config": wrapped(jsonutil.loads(fitted[0]))}

    def upload(self, name: str, path: Path) -> None:
        """The file at path as the run's file `name`: CreateRunFiles for its URL, then a PUT."""
        data = self._client.graphql(
            CREATE_RUN_FILES,
            {"entity": self.entity or None, "project": self.project, "run": self.run_id, "files": [name]},
        )
        created = data.get("createRunFiles") or {}
        headers = dict(h.split(":", 1) for h in created.get("uploadHeaders") or [] if ":" in h)
        for item in created.get("files") or []:
            if item.get("name") == name and item.get("uploadUrl"):
                self._client.upload(
                    item["uploadUrl"], path, {k.strip(): v.strip() for k, v in headers.items()}
                )
                return
        raise Rejected(f"the tracking server gave no upload URL for {name}")

    def alert(self, alert: pb.AlertRecord) -> None:
        """One alert of the run (notifyScriptableRunAlert); the server holds back a repeated title."""
        self._client.graphql(
            NOTIFY_ALERT,
            {
                "entity": self.entity or None,
                "project": self.project,
                "run": self.run_id,
                "title": alert.title,
                "text": alert.text,
                "severity": alert.level or "INFO",
                "wait": round(alert.wait_seconds * 1000),
                "createdAt": alert.timestamp or None,
                "key": alert.key or None,
            },
        )

    def post_stream(self, body: bytes) -> object:
        """One file-stream post (a StreamPost's encoding)."""
        return self._client.file_stream(self.entity, self.project, self.run_id, body)

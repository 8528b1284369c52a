"""Resolvers of the write side of the schema: upsertBucket (create or update a run), createRunFiles,
notifyScriptableRunAlert (a run's alert), deleteRun.

Inputs are checked whole before the store is touched; JSONString inputs arrive parsed (see
graphql_schema.py). A run of another entity is "not found", never "forbidden".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nbtrack.run_manage import running_refusal
from nbtrack.run_names import readable_name
from nbtrack.server.alerts import notify_alert
from nbtrack.server.context import RequestContext
from nbtrack.server.errors import ApiError
from nbtrack.server.files import check_file_name
from nbtrack.server.names import check_name, check_project
from nbtrack.server.resolvers import Info, Resolver, run_key
from nbtrack.settings import DEFAULT_PROJECT
from nbtrack.store.schema import RUN_STATES, RunFields

__all__ = ["MUTATIONS"]

# Text columns PostgreSQL holds as VARCHAR(255); longer values are refused rather than cut.
_SHORT_TEXT = 255


def _upsert_bucket(_root: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    context = info.context
    # An upsert by id alone is an edit (wandb's public API, nbtrack's run editor); by name, the
    # run's own client's (init, a config change, a resume). wandb's client resuming a run sends
    # both: the name, and the id its resume query read.
    edit = input.get("id") is not None and input.get("name") is None
    resuming = input.get("id") is not None and not edit
    input = _with_id_parts(input)
    entity = _entity(context, _either(input, "entity", "entityName"))
    project = check_project(_either(input, "project", "modelName") or DEFAULT_PROJECT)
    name = input.get("name")
    if name is None:
        raise ApiError("BAD_REQUEST", "upsertBucket needs the run id in input.name")
    run_id = check_name(name, "run name")
    _refuse_deleted(context, entity, project, run_id, edit=edit)
    fields: RunFields = {
        "display_name": _text(input.get("displayName"), "displayName"),
        "notes": _text(_notes(context, entity, project, run_id, input), "notes"),
        "tags": _tags(input.get("tags")),
        "group": _text(input.get("groupName"), "groupName", _SHORT_TEXT),
        "job_type": _text(input.get("jobType"), "jobType", _SHORT_TEXT),
        "host": _text(input.get("host"), "host", _SHORT_TEXT),
        "program": _text(_either(input, "program", "jobProgram"), "program"),
        "config": _config(input.get("config")),
        "summary": _summary(input.get("summaryMetrics")),
        "metrics": _metrics(input.get("metrics")),
        "state": _state(input.get("state")),
        "created_at": _created_at(input.get("createdAt")),
    }
    if resuming and fields["state"] is None:
        # A resumed run is live again, whatever it ended as (W&B reads it `running`): so its
        # client being killed now is seen (silent_runs.py) rather than leaving it `finished`.
        fields["state"] = "running"
    if not fields["display_name"] and context.store.get_run(entity, project, run_id) is None:
        # A new run without a name (the wandb client sends none unless given one) gets a readable
        # one, made from its id: a concurrent create of the same run names it the same.
        fields["display_name"] = readable_name(run_id)
    run, inserted = context.store.upsert_run_inserted(entity, project, run_id, by_writer=not edit, **fields)
    return {"bucket": run, "inserted": inserted}


def _create_run_files(_root: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    context = info.context
    entity = _entity(context, input.get("entityName"))
    project = check_project(_needed(input, "project", "projectName"))
    run_id = check_name(_needed(input, "run", "runName"), "run")
    names = [check_file_name(name) for name in input["files"]]
    run = context.store.get_run(entity, project, run_id)
    if run is None:
        raise ApiError("NOT_FOUND", f"run {entity}/{project}/{run_id} does not exist")
    return {
        "runID": run_key(run),
        "uploadHeaders": [],
        "files": [{"name": n, "uploadUrl": context.upload_url(entity, project, run_id, n)} for n in names],
    }


def _notify_alert(_root: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    return notify_alert(info.context, _entity(info.context, input.get("entityName")), input)


def _delete_run(_root: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    """Delete the run input.id names, rows first (one transaction), then its files. A run of
    another entity is "not found"; one still running is refused unless input.force."""
    context = info.context
    given = input["id"]
    if given.count("/") != 2:
        raise ApiError("BAD_REQUEST", f"input.id {given!r:.80} is not a run's id (entity/project/run)")
    entity_name, project_name, run_name = given.split("/")
    entity = _entity(context, entity_name)
    project, run_id = check_project(project_name), check_name(run_name, "run")
    path = f"{entity}/{project}/{run_id}"
    run = context.store.get_run(entity, project, run_id)
    if run is None:
        raise ApiError("NOT_FOUND", f"run {path} does not exist")
    running = run.state == "running"
    if running:
        refusal = running_refusal(path, bool(input.get("force")))
        if refusal is not None:
            raise ApiError("CONFLICT", refusal)
    if input.get("deleteArtifacts"):
        for version in context.store.run_logged_artifacts(entity, project, run_id):
            context.store.delete_artifact_version(version.id, delete_aliases=True)
    if context.store.delete_run(entity, project, run_id, mark=running) is None:
        raise ApiError("NOT_FOUND", f"run {path} does not exist")  # deleted by another request meanwhile
    # Rows first: files left by a failure below are only bytes, never half a run.
    context.files.remove_run(entity, project, run_id)
    context.exports.forget(entity, project, run_id)
    return {"clientMutationId": input.get("clientMutationId")}


MUTATIONS: dict[str, Resolver] = {
    "upsertBucket": _upsert_bucket,
    "createRunFiles": _create_run_files,
    "notifyScriptableRunAlert": _notify_alert,
    "deleteRun": _delete_run,
}


def _refuse_deleted(context: RequestContext, entity: str, project: str, run_id: str, *, edit: bool) -> None:
    """An upsert never brings back a deleted run: an edit (by id) of a run that is gone is "not
    found", and a run deleted while running refuses its client's later upserts by name."""
    if context.store.get_run(entity, project, run_id) is not None:
        return
    if context.store.was_deleted(entity, project, run_id):
        raise ApiError(
            "CONFLICT",
            f"run {entity}/{project}/{run_id} was deleted while it was running; "
            "its writes are refused (start a new run)",
        )
    if edit:
        raise ApiError("NOT_FOUND", f"run {entity}/{project}/{run_id} does not exist (deleted?)")


def _entity(context: RequestContext, given: str | None) -> str:
    """The entity a mutation is about: the caller's (NOT_FOUND for any other)."""
    if given is None or given == context.entity:
        return context.entity
    check_name(given, "entity")
    raise ApiError("NOT_FOUND", f"entity {given!r} does not exist or is not yours")


def _notes(context: RequestContext, entity: str, project: str, run_id: str, input: Mapping[str, Any]) -> Any:
    """input.notes or input.description (W&B's name for the same text). wandb's Api sends both on
    run.update(): the one the user set, and the other as it was read. So when they differ and one
    of them is the run's stored notes, the other one is the change; else they must agree."""
    notes, description = input.get("notes"), input.get("description")
    if notes is not None and description is not None and notes != description:
        run = context.store.get_run(entity, project, run_id)
        stored = None if run is None else run.notes
        if stored == description:
            return notes
        if stored == notes:
            return description
    return _either(input, "notes", "description")


def _either(input: Mapping[str, Any], name: str, other_name: str) -> Any:
    """A field with two names (nbtrack's and W&B's); if both are given, they must agree."""
    ours, theirs = input.get(name), input.get(other_name)
    if ours is not None and theirs is not None and ours != theirs:
        raise ApiError(
            "BAD_REQUEST", f"input.{name} ({ours!r:.60}) and input.{other_name} ({theirs!r:.60}) differ"
        )
    return ours if ours is not None else theirs


def _with_id_parts(input: dict[str, Any]) -> dict[str, Any]:
    """W&B's Api updates a run by its id alone: this server's ids are "entity/project/run"."""
    run_id = input.get("id")
    if input.get("name") is not None or not isinstance(run_id, str) or run_id.count("/") != 2:
        return input
    entity, project, name = run_id.split("/")
    return {"entityName": entity, "modelName": project, **input, "name": name}


def _needed(input: Mapping[str, Any], name: str, other_name: str) -> Any:
    """A field with two names that must be given under one of them."""
    value = _either(input, name, other_name)
    if value is None:
        raise ApiError("BAD_REQUEST", f"input.{name} (or input.{other_name}) is needed")
    return value


def _text(value: str | None, name: str, limit: int | None = None) -> str | None:
    if value is None:
        return None
    if "\0" in value:  # PostgreSQL text cannot hold NUL
        raise ApiError("BAD_REQUEST", f"input.{name} holds a NUL character")
    if limit is not None and len(value) > limit:
        raise ApiError("BAD_REQUEST", f"input.{name} is longer than {limit} characters")
    return value


def _tags(tags: list[str] | None) -> list[str] | None:
    if tags is not None and any(len(tag) > _SHORT_TEXT for tag in tags):
        raise ApiError("BAD_REQUEST", f"a tag is longer than {_SHORT_TEXT} characters")
    return tags


def _config(config: Any) -> dict[str, Any] | None:
    """W&B's {"key": {"value": v, "desc": ...}} as the plain {"key": v} the store keeps."""
    if config is None:
        return None
    if not isinstance(config, dict):
        raise ApiError("BAD_REQUEST", 'input.config must hold a JSON object such as {"lr": {"value": 0.1}}')
    return {
        key: item["value"] if isinstance(item, dict) and "value" in item else item
        for key, item in config.items()
    }


def _summary(summary: Any) -> dict[str, Any] | None:
    if summary is not None and not isinstance(summary, dict):
        raise ApiError("BAD_REQUEST", "input.summaryMetrics must hold a JSON object")
    return summary


def _metrics(metrics: Any) -> list[dict[str, Any]] | None:
    if metrics is None:
        return None
    if not isinstance(metrics, list) or not all(
        isinstance(m, dict) and isinstance(m.get("name"), str) for m in metrics
    ):
        raise ApiError(
            "BAD_REQUEST",
            'input.metrics must hold a JSON array of objects like {"name": "loss", "summary": "min"}',
        )
    return metrics


def _state(state: str | None) -> str | None:
    if state is not None and state not in RUN_STATES:
        raise ApiError("BAD_REQUEST", f"input.state {state!r:.40} is not one of {', '.join(RUN_STATES)}")
    return state


def _created_at(created_at: float | None) -> float | None:
    if created_at is not None and created_at < 0:
        raise ApiError("BAD_REQUEST", f"input.createdAt must be unix seconds, not {created_at}")
    return created_at

"""Run alerts: W&B's notifyScriptableRunAlert (wandb's run.alert, and nbtrack's own online runs),
kept in the store's alerts table (Store.add_alert) and listed by Run.alerts.

waitDuration (milliseconds) is W&B's "do not repeat this title within this time": an alert whose
title the run has within that time is not stored, and the answer is still a success (the client
asked for exactly that). nbtrack's own client also sends when the alert was raised (createdAt) and
its key (alertKey), so a retried or replayed alert is stored once and held back by its own time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbtrack.server.errors import ApiError
from nbtrack.server.names import check_name, check_project
from nbtrack.store.schema import AlertRow

if TYPE_CHECKING:
    from nbtrack.server.context import RequestContext

__all__ = ["alert_fields", "notify_alert"]

_KEY_MAX = 128  # the store's alert_key column


def notify_alert(context: RequestContext, entity: str, input: dict[str, Any]) -> dict[str, Any]:
    """Store the alert input describes (entity: the caller's); {"success": False} once the run
    keeps as many alerts as it may, and for an alert held back by waitDuration, True."""
    project = check_project(input["projectName"])
    run_id = check_name(input["runName"], "run")
    title, text = _text(input["title"], "title"), _text(input["text"], "text")
    key = input.get("alertKey")
    if key is not None and (not key or len(key) > _KEY_MAX or "\0" in key):
        raise ApiError("BAD_REQUEST", f"input.alertKey must be 1 to {_KEY_MAX} characters")
    created_at = input.get("createdAt")
    if created_at is not None and not 0 <= created_at < 1e11:
        raise ApiError("BAD_REQUEST", f"input.createdAt must be unix seconds, not {created_at}")
    if context.store.get_run(entity, project, run_id) is None:
        raise ApiError("NOT_FOUND", f"run {entity}/{project}/{run_id} does not exist")
    outcome = context.store.add_alert(
        entity,
        project,
        run_id,
        title=title,
        text=text,
        level=input.get("severity") or "INFO",
        created_at=created_at,
        wait_seconds=(input.get("waitDuration") or 0) / 1000,
        alert_key=key,
    )
    return {"success": outcome != "full"}


def alert_fields(alert: AlertRow) -> dict[str, Any]:
    """An Alert of the schema (W&B calls the level its severity)."""
    return {"title": alert.title, "text": alert.text, "severity": alert.level, "createdAt": alert.created_at}


def _text(value: str, name: str) -> str:
    if "\0" in value:  # PostgreSQL text cannot hold NUL
        raise ApiError("BAD_REQUEST", f"input.{name} holds a NUL character")
    return value

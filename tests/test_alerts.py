"""run.alert(): checked on the caller's thread, logged, and kept once in the store (local mode),
after `nbtrack sync` (offline), and on a tracking server (online, SQLite and PostgreSQL), where
W&B's notifyScriptableRunAlert also lands; a title is not repeated within its wait."""

from __future__ import annotations

import enum
from datetime import timedelta
from pathlib import Path

import pytest

import nbtrack
from nbtrack.settings import store_url
from nbtrack.store import Store
from nbtrack.sync import sync_log
from nbtrack.txlog import iter_records
from tests import serving
from tests.serving import ServerProcess, create_key, unique_name

server, pg_server = serving.server, serving.pg_server  # the fixtures


def alerts_of(api: nbtrack.Api, path: str) -> list[tuple[str, str, str]]:
    return [(a.title, a.text, a.level) for a in api.run(path).alerts]


def raise_alerts(run: nbtrack.Run) -> None:
    run.alert("loss diverged", "loss is nan at step 3", level="ERROR")
    run.alert("loss diverged", "again: held back", level="ERROR")  # the same title within 60 s
    run.alert("checkpoint", "saved", wait_duration=0)
    run.alert("checkpoint", "saved again", wait_duration=timedelta(0))  # no wait: kept
    run.alert("slow", "an epoch took 2 h", level="warn")


EXPECTED = [
    ("loss diverged", "loss is nan at step 3", "ERROR"),
    ("checkpoint", "saved", "INFO"),
    ("checkpoint", "saved again", "INFO"),
    ("slow", "an epoch took 2 h", "WARN"),
]


class Level(enum.Enum):
    WARN = "WARN"


def test_bad_arguments_raise_naming_the_culprit(root: Path) -> None:
    with nbtrack.init(project="p", dir=root, mode="offline") as run:
        with pytest.raises(ValueError, match=r"level must be one of 'INFO', 'WARN', 'ERROR', not 'DEBUG'"):
            run.alert("t", "x", level="DEBUG")
        with pytest.raises(TypeError, match=r"alert\(\): text must be a str, not int"):
            run.alert("t", 3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"alert\(\): title must be a str, not NoneType"):
            run.alert(None, "x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"alert\(\): title is empty"):
            run.alert("  ", "x")
        with pytest.raises(ValueError, match=r"alert\(\): text holds a NUL"):
            run.alert("t", "a\0b")
        with pytest.raises(ValueError, match=r"wait_duration must be seconds >= 0.*-1"):
            run.alert("t", "x", wait_duration=-1)
        with pytest.raises(ValueError, match=r"wait_duration"):
            run.alert("t", "x", wait_duration="1m")  # type: ignore[arg-type]
        run.alert("fine", "an enum level", level=Level.WARN)  # type: ignore[arg-type]
    with pytest.raises(nbtrack.errors.UsageError, match=r"alert\(\): run .* is finished"):
        run.alert("late", "x")
    [record] = [r.alert for r in iter_records(next(run.dir.glob("*.nbt"))) if r.HasField("alert")]
    assert (record.title, record.level, record.wait_seconds) == ("fine", "WARN", 60.0)
    assert record.key.startswith(run.id) and record.timestamp > 0


def test_local_mode_keeps_alerts_in_the_store(root: Path) -> None:
    with nbtrack.init(project="p", dir=root, id="loc") as run:
        raise_alerts(run)
    assert alerts_of(nbtrack.Api(dir=root), "p/loc") == EXPECTED
    with Store.at_root(root) as store:
        created = [a.created_at for a in store.read_alerts("local", "p", "loc")]
    assert created == sorted(created) and created[0] > 1e9


def test_past_the_runs_alert_limit_none_is_sent_and_that_is_said_once(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nbtrack.sdk.alerts.ALERTS_PER_RUN", 3)
    with nbtrack.init(project="p", dir=root, id="cap") as run:
        for i in range(6):
            run.alert(f"alert {i}", "")
    assert [a["title"] for a in run.alerts] == ["alert 0", "alert 1", "alert 2"]
    said = [n for n in run.notices if "keeps at most 3 alerts" in n]
    assert said == ["run cap keeps at most 3 alerts: 'alert 3' and any later ones are not kept"]
    kinds = [r.WhichOneof("record_type") for r in iter_records(run.dir / "run-cap.nbt")]
    assert kinds.count("alert") == 3
    assert [t for t, _, _ in alerts_of(nbtrack.Api(dir=root), "p/cap")] == ["alert 0", "alert 1", "alert 2"]


def test_offline_alerts_arrive_with_sync_once(root: Path) -> None:
    with nbtrack.init(project="p", dir=root, id="off", mode="offline") as run:
        raise_alerts(run)
    log = next(run.dir.glob("*.nbt"))
    for _ in range(2):  # a second sync adds nothing
        assert sync_log(log, store_url(root)).error is None
        assert alerts_of(nbtrack.Api(dir=root), "p/off") == EXPECTED


def test_offline_alerts_sync_to_a_server_once(root: Path, server: ServerProcess) -> None:
    with nbtrack.init(project="p", dir=root, id="offs", mode="offline") as run:
        raise_alerts(run)
    log = next(run.dir.glob("*.nbt"))
    for _ in range(2):
        assert sync_log(log, base_url=server.url).error is None
        assert alerts_of(nbtrack.Api(base_url=server.url), "p/offs") == EXPECTED


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_online_alerts_reach_the_server(database: str, root: Path, request: pytest.FixtureRequest) -> None:
    served: ServerProcess = request.getfixturevalue("server" if database == "sqlite" else "pg_server")
    entity = unique_name("alerts")
    key = create_key(served, entity)
    project = unique_name("p")
    with nbtrack.init(project=project, dir=root, id="onl", base_url=served.url, api_key=key) as run:
        raise_alerts(run)
    assert run.state == "finished"
    api = nbtrack.Api(base_url=served.url, api_key=key)
    assert alerts_of(api, f"{entity}/{project}/onl") == EXPECTED
    # Syncing the run's log to the server again (a retry after a lost answer) adds nothing.
    assert sync_log(next(run.dir.glob("*.nbt")), base_url=served.url, api_key=key).error is None
    assert alerts_of(api, f"{entity}/{project}/onl") == EXPECTED
    # W&B's own mutation: waitDuration holds a title back, its absence does not.
    client = serving.Client(served.url, entity, key)
    mutation = """mutation A($p: String!, $title: String!, $wait: Duration) { notifyScriptableRunAlert(
        input: {projectName: $p, runName: "onl", title: $title, text: "w", severity: WARN,
        waitDuration: $wait}) { success } }"""

    def notify(title: str, wait: int | None) -> object:
        return client.data(mutation, p=project, title=title, wait=wait)["notifyScriptableRunAlert"]["success"]

    assert notify("slow", 60_000) is True  # held back: "slow" was raised a moment ago
    assert notify("wb", 60_000) is True
    assert notify("wb", 60_000) is True
    assert notify("wb", None) is True
    assert alerts_of(api, f"{entity}/{project}/onl") == [*EXPECTED, ("wb", "w", "WARN"), ("wb", "w", "WARN")]
    missing = client.graphql(mutation.replace('"onl"', '"nobody"'), p=project, title="t", wait=None).json()
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"

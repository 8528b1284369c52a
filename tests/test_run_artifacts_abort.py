"""finish(timeout=) with an artifact that cannot be delivered in time: a tracking server that is
unreachable, or that takes the run's rows but whose uploads stall, and a local store locked by
another writer. finish() returns within its bound, names the artifact that is not delivered and
the `nbtrack sync` command that delivers it, the internal process ends soon after instead of
retrying on, and the sync then stores the version once, byte-identical."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbtrack
from nbtrack.online.artifact_records import send_artifact
from nbtrack.online.client import ServerClient
from nbtrack.online.retry import Transient
from nbtrack.sdk.run_artifacts import STAGED, artifact_record
from nbtrack.settings import store_url
from nbtrack.store.artifact_rows import ArtifactsError
from nbtrack.sync import sync_log
from tests import serving
from tests.faultproxy import FaultProxy, Faults
from tests.helpers import Locker
from tests.serving import Client, ServerProcess, create_key, unique_name
from tests.test_run_artifacts import dataset, make_files, same_files, versions

server = serving.server  # the fixture

pytestmark = pytest.mark.timeout(300)

FINISH_TIMEOUT = 3.0
SLACK = 10.0  # finish() keeps to its timeout; this only absorbs a slow, shared machine
PROCESS_END = 10.0  # the internal process ends this soon after finish() returned
GIVEN_UP = 10.0  # a delivery asked to stop ends this soon (a slow upload alone takes three times that)


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def finish_in_time(run: nbtrack.Run) -> str:
    """finish(timeout=FINISH_TIMEOUT): returns within its bound, its internal process ends soon
    after, and it says once that it stopped waiting: that notice."""
    started = time.monotonic()
    run.finish(timeout=FINISH_TIMEOUT)
    took = time.monotonic() - started
    assert took < FINISH_TIMEOUT + SLACK, f"finish(timeout={FINISH_TIMEOUT:g}) took {took:.1f} s"
    assert run._connection is not None
    process = run._connection.process
    assert process.join(PROCESS_END), (
        f"the internal process {process.pid} still runs {PROCESS_END:g} s after finish() returned"
    )
    said = [n for n in run.notices if "finish() stopped waiting" in n]
    assert len(said) == 1, run.notices
    return said[0]


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[FaultProxy]:
    with FaultProxy(server.url) as proxied:
        yield proxied


@pytest.mark.parametrize("fault", ["server unreachable", "uploads stalled"])
def test_finish_gives_up_on_an_artifact_the_server_cannot_take_and_sync_delivers_it_once(
    fault: str,
    root: Path,
    tmp_path: Path,
    server: ServerProcess,
    proxy: FaultProxy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    entity = unique_name("abort")
    key = create_key(server, entity)
    project = unique_name("p")
    files = make_files(tmp_path / "data")
    run = nbtrack.init(project=project, dir=root, id="stuck", base_url=proxy.url, api_key=key)
    run.log({"x": 0})
    wait_for(lambda: run.status().rows_stored == 1, 30, "the first row to reach the server")
    if fault == "server unreachable":  # the rows after it wait too
        proxy.down = True
        run.log_artifact(dataset(files), aliases=["best"])
        for x in range(1, 50):
            run.log({"x": x})
    else:  # the server takes every row, and answers everything but the PUTs of the artifact's files
        for x in range(1, 50):
            run.log({"x": x})
        wait_for(lambda: run.status().rows_stored == 50, 30, "the rows to reach the server")
        proxy.faults = Faults(stall=("PUT",))
        run.log_artifact(dataset(files), aliases=["best"])
        wait_for(lambda: proxy.stats["stalled"] > 0, 30, "an upload to stall")

    said = finish_in_time(run)
    log = run._settings.log_path
    if fault == "uploads stalled":  # while it waited, it said for what
        assert f"waiting for 0 rows and 1 artifact to reach {proxy.url}" in capsys.readouterr().err
    left = "49 rows and artifact ds are" if fault == "server unreachable" else "artifact ds is"
    assert f": {left} not in the tracking server yet; " in said, said
    assert f"is in the transaction log {log}: `nbtrack sync {log} --base-url {proxy.url}` delivers" in said
    assert run.state == "running"  # not "finished": the server lacks the artifact
    api = nbtrack.Api(base_url=server.url, api_key=key)
    with pytest.raises(ArtifactsError, match="no artifact ds:best"):
        api.artifact(f"{entity}/{project}/ds:best")

    proxy.down, proxy.faults = False, Faults()
    for _ in range(2):  # delivered once, however often the log is synced
        assert sync_log(log, base_url=server.url, api_key=key).error is None
        got = api.artifact(f"{entity}/{project}/ds:best")
        logged_by = got.logged_by()
        assert (
            [v.name for v in got.versions()] == ["ds:v0"]
            and logged_by is not None
            and logged_by.id == "stuck"
        )
    assert same_files(files, got.download(tmp_path / "out"))
    stored = api.run(f"{entity}/{project}/stuck")
    assert stored.state == "finished" and [r["x"] for r in stored.history()] == list(range(50))


def test_finish_gives_up_on_an_artifact_a_locked_store_cannot_take_and_sync_delivers_it_once(
    root: Path, tmp_path: Path
) -> None:
    files = make_files(tmp_path / "data")
    run = nbtrack.init(project="p", dir=root, id="locked")
    run.log({"x": 0})
    wait_for(lambda: run.status().rows_stored == 1, 30, "the first row to reach the store")
    locker = Locker(root / "nbtrack.db", seconds=120)  # another writer holds the store
    locker.start()
    assert locker.locked.wait(30)
    try:
        run.log_artifact(dataset(files), aliases=["best"])
        for x in range(1, 50):
            run.log({"x": x})
        said = finish_in_time(run)
    finally:
        locker.stop_now()
    log = run._settings.log_path
    assert ": 49 rows and artifact ds are not in the store yet; every one of them is in the " in said, said
    assert f"`nbtrack sync {log}` delivers them" in said
    assert versions(root) == []
    for _ in range(2):
        assert sync_log(log, store_url(root)).error is None
        assert versions(root) == [("v0", ("best", "latest"))]
    assert same_files(files, nbtrack.Api(dir=root).artifact("p/ds:best").download(tmp_path / "out"))


@pytest.mark.parametrize("fault", ["server unreachable", "slow upload"])
def test_a_delivery_told_to_stop_ends_between_retries_and_inside_a_slow_upload_then_delivers_once(
    fault: str, tmp_path: Path, server: ServerProcess, proxy: FaultProxy
) -> None:
    """What HttpBackend.abort() does to an artifact on its way: the stop event ends the retries,
    and an upload between two chunks, rather than after RETRY_SECONDS or the whole file."""
    entity = unique_name("stop")
    key = create_key(server, entity)
    project = unique_name("p")
    Client(server.url, entity, key).upsert(project, "r1")
    big = tmp_path / "data" / "big.bin"
    big.parent.mkdir()
    big.write_bytes(os.urandom(32 << 20))
    art = nbtrack.Artifact("big", type="model")
    art.add_file(big)
    record = artifact_record(art, [], tmp_path / "run")
    staged = tmp_path / "run" / STAGED
    client = ServerClient(proxy.url, key)
    stop = threading.Event()
    outcome: list[object] = []

    def deliver() -> None:
        try:
            outcome.append(send_artifact(client, (entity, project, "r1"), record, staged, stop=stop))
        except Exception as exc:
            outcome.append(exc)

    if fault == "server unreachable":
        proxy.down = True
    else:
        proxy.faults = Faults(put_rate=1 << 20)  # 32 s for the file
    thread = threading.Thread(target=deliver, daemon=True)
    thread.start()
    seen = "refused" if fault == "server unreachable" else "slow_bytes"
    wait_for(lambda: proxy.stats[seen] > 0, 30, f"the delivery to meet the {fault}")
    stop.set()
    thread.join(GIVEN_UP)
    assert not thread.is_alive(), f"the delivery goes on {GIVEN_UP:g} s after it was told to stop"
    assert len(outcome) == 1 and isinstance(outcome[0], Transient), outcome

    proxy.down, proxy.faults = False, Faults()
    for _ in range(2):  # what the stopped call left (a pending version, a blob) makes no second one
        logged = send_artifact(client, (entity, project, "r1"), record, staged)
        assert logged.version == "v0"
    client.close()
    got = nbtrack.Api(base_url=server.url, api_key=key).artifact(f"{entity}/{project}/big:latest")
    assert [v.name for v in got.versions()] == ["big:v0"]
    assert (got.download(tmp_path / "out") / "big.bin").read_bytes() == big.read_bytes()

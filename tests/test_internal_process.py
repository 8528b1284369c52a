"""The internal process as the user side sees it through its pipes: heartbeats every second, the
log and the acknowledgements go on while the store is locked, and a shutdown while the store is
still being retried ends the process within two seconds, leaving the run `running` in the store
and every row in the log, which `nbtrack sync` then delivers."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.settings import store_url
from nbtrack.sync import sync_log
from nbtrack.txlog import iter_records
from tests.helpers import stored_history, stored_run
from tests.internal_driver import Driver
from tests.test_store_lock import Locker

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def driver(root: Path) -> Iterator[Driver]:
    driver = Driver(root, "driven")
    yield driver
    driver.close()


def rows(first: int, count: int) -> list[dict[str, float]]:
    return [{"i": i, "x": i * 0.5} for i in range(first, first + count)]


def poll(driver: Driver) -> pb.PollExitResponse:
    response = driver.request(pb.Request(poll_exit=pb.PollExitRequest()))
    assert response is not None
    return response.poll_exit


def test_heartbeats_arrive_every_second_while_the_store_is_locked(root: Path, driver: Driver) -> None:
    driver.start()
    driver.log(rows(0, 100))
    locker = Locker(root / "nbtrack.db", 6.0)
    locker.start()
    assert locker.locked.wait(30)
    driver.log(rows(100, 100))
    time.sleep(4.5)
    beats = [at for at in driver.heartbeats() if at > time.monotonic() - 4.5]
    assert len(beats) >= 3
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert max(gaps) < 2.0, gaps  # a benchmark would time them; this only says "never starved"
    assert poll(driver).retrying
    locker.join(30)


def test_a_shutdown_while_the_store_is_locked_ends_the_process_at_once_and_sync_delivers_the_rest(
    root: Path, driver: Driver
) -> None:
    driver.start()
    for first in range(0, 1000, 500):
        driver.log(rows(first, 500))
    assert driver.wait_for(lambda r: r.HasField("ack") and r.ack.seq == 1000, 30) is not None
    deadline = time.monotonic() + 30
    while poll(driver).rows_pending and time.monotonic() < deadline:
        time.sleep(0.1)
    locker = Locker(root / "nbtrack.db", 60.0)  # longer than the test: released by killing it below
    locker.start()
    assert locker.locked.wait(30)
    for first in range(1000, 5000, 500):
        driver.log(rows(first, 500))
    # The writer never waits for the sender: every row is logged and acknowledged meanwhile.
    assert driver.wait_for(lambda r: r.HasField("ack") and r.ack.seq == 5000, 10) is not None
    progress = poll(driver)
    assert progress.rows_unlogged == 0 and progress.rows_pending > 0
    exit_slot = driver.exit()
    time.sleep(2.5)  # a locked SQLite call counts as retrying once it waited 2 s
    progress = poll(driver)
    assert not progress.done and progress.retrying

    started = time.monotonic()
    answer = driver.request(pb.Request(shutdown=pb.ShutdownRequest()), timeout=10)
    answered = time.monotonic() - started
    assert answer is not None and answered < 2.5, answered
    assert driver.process.join(2.0), "the process did not exit after answering"
    left = answer.shutdown
    assert left.exit_result.state == "running" and left.exit_result.rows_lost == 0
    assert 0 < left.rows_not_stored <= 5000
    assert driver.wait_for(lambda r: r.control.mailbox_slot == exit_slot, 0) is None  # no false "finished"

    locker.stop_now()
    assert stored_run(root, "driven").state == "running"
    assert len(stored_history(root, "driven")) == 5000 - left.rows_not_stored
    report = sync_log(driver.log_path, store_url(root))
    assert report.error is None and report.complete
    assert [r["i"] for r in stored_history(root, "driven")] == list(range(5000))
    assert stored_run(root, "driven").state == "finished"


def test_a_recovered_log_that_holds_its_exit_record_gets_no_system_samples_after_it(tmp_path: Path) -> None:
    """The process dies after the exit record is in the log: the one that recovers the log must
    not start sampling the machine for a run that has ended."""
    first = Driver(tmp_path, "ended")
    first.start()
    first.log([{"x": 1.0}])
    slot = first.exit()
    assert first.wait_for(lambda r: r.control.mailbox_slot == slot, 30) is not None
    first.close()  # killed before its shutdown: the log ends with the exit record
    second = Driver(tmp_path, "ended", recover=True, stats_interval=0.05)
    try:
        # Its answer to a request comes after the setup (and so the recovery) was handled; a
        # sampler started by mistake takes ~20 samples in the second that follows.
        assert second.request(pb.Request(status=pb.StatusRequest())) is not None
        time.sleep(1.0)
        slot = second.exit()
        assert second.wait_for(lambda r: r.control.mailbox_slot == slot, 30) is not None
    finally:
        second.close()
    kinds = [record.WhichOneof("record_type") for record in iter_records(second.log_path)]
    exit_at = kinds.index("exit")
    assert "stats" not in kinds[exit_at:], kinds[exit_at:]

"""The online backend's line queue: bounded memory, the transaction log as the overflow buffer."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import nbtrack
from nbtrack.online.line_queue import LineQueue
from nbtrack.txlog import iter_records


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A real run's transaction log (offline mode) and its history lines in order."""
    root = tmp_path_factory.mktemp("queue")
    run = nbtrack.init(mode="offline", dir=root, project="queue")
    for i in range(3000):
        run.log({"x": i, "pad": "p" * (i % 50)})
    run.finish()
    log = next(run.dir.glob("*.nbt"))
    lines = [
        r.history.data_json.decode() for r in iter_records(log) if r.WhichOneof("record_type") == "history"
    ]
    assert len(lines) == 3000
    return log, lines


def test_lines_beyond_the_memory_bound_are_read_back_from_the_log_in_order(
    logged: tuple[Path, list[str]],
) -> None:
    log, lines = logged
    queue = LineQueue(log, max_rows=200)
    rng = random.Random(3)
    added, taken, position = 0, [], 0
    while position < len(lines):
        if added < len(lines) and rng.random() < 0.6:  # the sender adds a batch...
            batch = lines[added : added + rng.randint(1, 120)]
            queue.add(added, batch)
            added += len(batch)
        else:  # ...or the delivery thread takes a post
            offset, chunk = queue.take(rng.randint(1, 150), 1 << 20)
            assert offset == position
            taken.extend(chunk)
            position += len(chunk)
        assert len(queue) == added - position
    assert taken == lines
    assert queue.lines_read_back > 0  # the bound was hit and the log served the overflow
    assert len(queue) == 0 and queue.nbytes == 0


def test_after_catching_up_new_lines_are_kept_in_memory_again(logged: tuple[Path, list[str]]) -> None:
    log, lines = logged
    queue = LineQueue(log, max_rows=10)
    queue.add(0, lines[:10])  # the memory bound is reached...
    queue.add(10, lines[10:50])  # ...so these 40 stay only in the log
    assert queue.take(1000, 1 << 20) == (0, lines[:10])
    assert queue.take(1000, 1 << 20) == (10, lines[10:50])
    read_back = queue.lines_read_back
    queue.add(50, lines[50:55])
    assert queue.take(1000, 1 << 20) == (50, lines[50:55])
    assert queue.lines_read_back == read_back


def test_without_a_log_every_line_stays_in_memory() -> None:
    queue = LineQueue(max_rows=2)
    queue.add(7, ["a", "b", "c"])
    queue.add(10, ["d"])
    assert queue.take(2, 1 << 20) == (7, ["a", "b"])
    assert queue.take(9, 1 << 20) == (9, ["c", "d"])
    assert queue.take(9, 1 << 20) == (11, [])


def test_posts_are_bounded_in_bytes_but_never_empty() -> None:
    queue = LineQueue()
    queue.add(0, ["x" * 100, "y" * 100, "z"])
    assert queue.take(10, 150) == (0, ["x" * 100])
    assert queue.take(10, 50) == (1, ["y" * 100])  # one line larger than the bound still goes
    assert queue.nbytes == 1


def test_lines_must_follow_on() -> None:
    queue = LineQueue()
    queue.add(0, ["a"])
    with pytest.raises(ValueError, match="do not follow on"):
        queue.add(5, ["b"])

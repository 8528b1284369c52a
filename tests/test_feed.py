"""The log as the sender's queue: past its memory bound the Feed keeps only byte ranges of a real
transaction log and reads the records back, whole and in order, never past what was flushed."""

from __future__ import annotations

import random
from pathlib import Path

from nbtrack.internal.feed import MEMORY_BYTES, Feed, HistoryLines, Item, in_memory
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.txlog import FILE_HEADER, LogReader, LogWriter
from nbtrack.worker import END, _Marker


def history(step: int, size: int) -> pb.Record:
    return pb.Record(history=pb.HistoryRecord(step=step, data_json=b'{"pad": "' + b"x" * size + b'"}'))


def steps_of(item: Item) -> list[int]:
    if isinstance(item, HistoryLines):
        return item.steps
    return [r.history.step for r in item if r.HasField("history")]


def drain(feed: Feed) -> list[int]:
    steps: list[int] = []
    while True:
        got = feed.get(0.01)
        if got is END:
            return steps
        if not isinstance(got, _Marker):
            steps.extend(steps_of(got))


def test_records_past_the_memory_bound_are_read_back_from_the_log_in_order(tmp_path: Path) -> None:
    path = tmp_path / "run.nbt"
    log = LogWriter.create(path)
    feed = Feed(memory_bytes=50_000)
    feed.attach(LogReader(path))
    rng = random.Random(7)
    step = 0
    for _ in range(300):  # batches whose records cross block boundaries (and need padding)
        batch = [history(step + i, rng.choice([10, 500, 5000, 40_000])) for i in range(rng.randint(1, 5))]
        step += len(batch)
        start = log.bytes_written
        size = 0
        for record in batch:
            payload = record.SerializeToString()
            size += len(payload)
            log.append(payload)
        # Rows go as HistoryLines (how the writer hands over a batch of rows), or as Records.
        lines = HistoryLines([r.history.data_json for r in batch], [r.history.step for r in batch])
        feed.push(lines if step % 2 else batch, size, (start, log.bytes_written))
    # What fit in memory comes first; then nothing until the log's bytes are handed to the OS:
    # the sender waits rather than read bytes that are not in the file yet.
    steps: list[int] = []
    while not isinstance(got := feed.get(0.01), _Marker):
        steps.extend(steps_of(got))
    assert 0 < len(steps) < step and feed.read_back == 0
    log.flush()
    feed.flushed(log.bytes_flushed)
    feed.close()
    steps += drain(feed)
    assert steps == list(range(step)) and feed.read_back > 0 and feed.waiting == 0


def test_a_recovered_log_is_one_range_read_back_before_anything_new(tmp_path: Path) -> None:
    path = tmp_path / "run.nbt"
    with LogWriter.create(path) as log:
        for step in range(2000):
            log.append(history(step, 50).SerializeToString())
    log = LogWriter.open_for_append(path)
    feed = Feed()
    feed.attach(LogReader(path))
    feed.flushed(log.bytes_flushed)
    feed.push_range(len(FILE_HEADER), log.bytes_flushed, 2000)
    new = history(2000, 10)
    start = log.bytes_written
    log.append(new.SerializeToString())
    log.flush()
    feed.push([new], 20, (start, log.bytes_written))
    feed.flushed(log.bytes_flushed)
    feed.close()
    assert drain(feed) == list(range(2001))


def read_back_chunks(path: Path, count: int, feed: Feed) -> list[list[pb.Record]]:
    """Every batch the feed hands over for a log of count records, read back as one range."""
    log = LogWriter.open_for_append(path)
    feed.attach(LogReader(path))
    feed.flushed(log.bytes_flushed)
    feed.push_range(len(FILE_HEADER), log.bytes_flushed, count)
    feed.close()
    chunks: list[list[pb.Record]] = []
    while (got := feed.get(0.01)) is not END:
        if not isinstance(got, _Marker):
            assert isinstance(got, list)
            chunks.append(got)
    return chunks


def test_a_batch_read_back_holds_no_more_than_the_memory_bound(tmp_path: Path) -> None:
    # Rows of 2 MB each (a long string logged over and over): 5000 records a batch was 10 GB.
    path = tmp_path / "run.nbt"
    with LogWriter.create(path) as log:
        for step in range(24):
            log.append(history(step, 2_000_000).SerializeToString())
    chunks = read_back_chunks(path, 24, Feed())
    assert [r.history.step for chunk in chunks for r in chunk] == list(range(24))
    held = [in_memory(sum(r.ByteSize() for r in chunk), len(chunk)) for chunk in chunks]
    assert max(held) <= MEMORY_BYTES and len(chunks) >= 3  # 48 MB of rows: several batches


def test_a_record_larger_than_the_bound_is_read_back_alone(tmp_path: Path) -> None:
    path = tmp_path / "run.nbt"
    sizes = [10, 30_000, 30_000, 200_000, 10, 10, 70_000, 70_000]
    with LogWriter.create(path) as log:
        for step, size in enumerate(sizes):
            log.append(history(step, size).SerializeToString())
    feed = Feed(memory_bytes=100_000)
    chunks = read_back_chunks(path, len(sizes), feed)
    steps = [[r.history.step for r in chunk] for chunk in chunks]
    # Each batch stops short of the bound, except that one record always goes, whatever its size.
    assert steps == [[0, 1, 2], [3], [4, 5, 6], [7]]
    assert feed.waiting == 0 and feed.read_back == len(sizes)

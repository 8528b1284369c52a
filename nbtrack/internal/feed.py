"""The sender's inbox, fed by the writer: the transaction log is the sender's queue.

The writer never waits for the sender (a locked store, a server down, a slow disk under the
store must not stop the log, nor acknowledgements to the user side). While the records waiting
here take less than `memory_bytes` (their serialized size, which the writer knows, plus what
they cost in memory beyond it: ~100 bytes a row of a batch of rows, kept as `HistoryLines`, and
~1.5 KB a parsed Record), they wait in memory. Beyond that the writer hands over only where
they are: "records of the log in bytes [start, end)". The sender reads them back from the log
when it gets there, and only bytes the writer has handed to the OS (`flushed`), in batches held
to the same bound (rows of megabytes each must not make a batch of gigabytes). Once it has
caught up, records wait in memory again. A recovered run's sender starts with the whole
reopened log as one such range.

Records that are not in the log (the setup, an offline run's replies) always wait in memory; so
does everything while there is no log to read back from (it could not be created), and then the
writer does wait for room: the bound holds either way.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.txlog import Corruption, LogReader
from nbtrack.worker import EMPTY, END, Queue, _Marker

__all__ = [
    "LINE_OVERHEAD",
    "MEMORY_BYTES",
    "READ_BACK_RECORDS",
    "Feed",
    "HistoryLines",
    "Item",
    "ReadBatch",
    "in_memory",
]

logger = logging.getLogger("nbtrack")

MEMORY_BYTES = 16 << 20  # memory the records waiting here may take before the log takes over
RECORD_OVERHEAD = 1536  # bytes a parsed Record takes in memory beyond its serialized size (measured)
LINE_OVERHEAD = 100  # bytes a history row of HistoryLines takes beyond its serialized size


def in_memory(serialized: int, count: int, overhead: int = RECORD_OVERHEAD) -> int:
    """What `count` records of `serialized` bytes in all take in memory: the one measure both the
    records waiting here and a chunk read back from the log are bounded in."""
    return serialized + overhead * count


@dataclass
class HistoryLines:
    """Consecutive history rows as the sender uses them: each row's JSON line and step. A batch of
    rows waits in this form, several times smaller than parsed Records."""

    lines: list[bytes]
    steps: list[int]


Item = list[pb.Record] | HistoryLines  # what the sender gets
READ_BACK_RECORDS = 5000  # records read back from the log per batch, at most (see ReadBatch)


@dataclass
class _Range:
    """Records of the log in bytes [start, end), not kept in memory."""

    start: int
    end: int
    count: int


@dataclass
class _Batch:
    item: Item
    count: int
    size: int


class Feed(Queue):
    """Writer -> sender: batches of records in order, from memory or read back from the log.

    The worker's Source for the sender's thread (close and fail as every Queue has them).
    """

    def __init__(self, memory_bytes: int = MEMORY_BYTES) -> None:
        super().__init__()
        self._limit = memory_bytes
        self._items: deque[_Batch | _Range] = deque()
        self._memory = 0  # serialized bytes of the batches in memory
        self._waiting = 0  # records waiting, in memory or in the log
        self._flushed = 0  # the log's bytes handed to the OS (readable)
        self._reader: LogReader | None = None
        self.read_back = 0  # records the sender got from the log rather than from memory

    # -- the writer's side -----------------------------------------------------------------

    def attach(self, reader: LogReader) -> None:
        """The log records can be read back from from now on."""
        with self._cond:
            self._reader = reader

    def flushed(self, offset: int) -> None:
        """The log's bytes up to offset are handed to the OS; offset is the end of a record (the
        writer reports only flushes that wrote its whole buffer)."""
        with self._cond:
            if offset > self._flushed:
                self._flushed = offset
                if self._items and type(self._items[0]) is _Range:
                    self._cond.notify_all()

    def push(self, item: Item, size: int, span: tuple[int, int] | None) -> None:
        """Records for the sender; size: their serialized bytes; span: the bytes [start, end) of
        the log they were appended to, one after the other (None: they are not in the log)."""
        if isinstance(item, HistoryLines):
            count = len(item.lines)
            size = in_memory(size, count, LINE_OVERHEAD)
        else:
            count = len(item)
            size = in_memory(size, count)
        with self._cond:
            self._raise_if_dead()
            tail = self._items[-1] if self._items else None
            readable = span is not None and self._reader is not None
            if readable and (type(tail) is _Range or self._memory + size > self._limit):
                assert span is not None
                if type(tail) is _Range and tail.end == span[0]:
                    tail.end, tail.count = span[1], tail.count + count
                else:
                    self._items.append(_Range(span[0], span[1], count))
            else:
                # Not readable back: memory is all there is. Wait for room (but never for a dead sender).
                while not readable and self._memory and self._memory + size > self._limit:
                    self._raise_if_dead()
                    self._cond.wait()
                self._items.append(_Batch(item, count, size))
                self._memory += size
            self._waiting += count
            self._cond.notify_all()

    def push_range(self, start: int, end: int, count: int) -> None:
        """count records already in the log, in bytes [start, end): a recovered run's log."""
        with self._cond:
            self._items.append(_Range(start, end, count))
            self._waiting += count
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def waiting(self) -> int:
        """Records handed over that the sender has not taken yet."""
        return self._waiting

    # -- the sender's side -----------------------------------------------------------------

    def get(self, timeout: float) -> Item | _Marker:
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if not self._items:
                return END if self._closed else EMPTY
            head = self._items[0]
            if type(head) is _Batch:
                self._items.popleft()
                self._memory -= head.size
                self._waiting -= head.count
                self._cond.notify_all()  # room for a writer waiting without a log
                return head.item
            assert type(head) is _Range
            if self._flushed <= head.start:  # not handed to the OS yet (the disk may be full)
                self._cond.wait(timeout)
                if self._flushed <= head.start:
                    return EMPTY
            start, end, reader = head.start, min(head.end, self._flushed), self._reader
        assert reader is not None
        records, reached = self._read(reader, start, end)  # outside the lock: it is slow
        with self._cond:
            head.start = reached
            head.count -= len(records)
            if head.start >= head.end:
                self._items.popleft()  # caught up with this range: new records stay in memory again
                self._waiting -= head.count  # records of the range that did not read back (damage)
            self._waiting -= len(records)
            self.read_back += len(records)
        return records

    def _read(self, reader: LogReader, start: int, end: int) -> tuple[list[pb.Record], int]:
        """A ReadBatch of the records in bytes [start, end), and where the next one starts."""
        batch = ReadBatch(self._limit)

        def damaged(corruption: Corruption) -> None:
            logger.error("nbtrack: the transaction log is damaged where it is read back: %s", corruption)

        for record_start, _, payload in reader.records(start, end, damaged):
            if not batch.has_room(len(payload)):
                return batch.records, record_start  # the next batch starts with it, unparsed
            record = pb.Record.FromString(payload)
            # The log's own records (header, final, footer) are nothing to deliver.
            if record.WhichOneof("record_type") not in ("header", "final", "footer"):
                batch.add(record, len(payload))
        return batch.records, end  # end is a record's end: everything before it is read (or was damaged)


class ReadBatch:
    """Records read back from a log for the sender, a batch at a time (the Feed's ranges, and
    `nbtrack sync`): at most READ_BACK_RECORDS of them, taking at most the memory bound as push()
    counts records waiting in memory, and always at least one, so the reader moves on whatever a
    record's size."""

    def __init__(self, limit: int = MEMORY_BYTES) -> None:
        self.records: list[pb.Record] = []
        self._limit = limit
        self._held = 0

    def has_room(self, size: int) -> bool:
        """Whether a record of `size` serialized bytes may join the batch."""
        if not self.records:
            return True
        return len(self.records) < READ_BACK_RECORDS and self._held + in_memory(size, 1) <= self._limit

    def add(self, record: pb.Record, size: int) -> None:
        self.records.append(record)
        self._held += in_memory(size, 1)

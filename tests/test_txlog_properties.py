"""Properties of the transaction log over random records, random damage and random truncation.

The oracle `layout` places chunks from the spec alone (docs/log-format.md), independently of the
writer, so that the properties can say which records must survive a given damage.
"""

from __future__ import annotations

import random
import struct
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nbtrack.txlog import BLOCK_SIZE, FILE_HEADER, HEADER_SIZE, Corruption, LogWriter, read_log

Span = tuple[int, int]

# A size, or -1 - g: "the size that leaves exactly g bytes in the current block" (g < 10), so that
# records end on block boundaries and leave room for less than, exactly or just over a chunk header.
sizes = st.lists(
    st.one_of(st.integers(0, 60), st.integers(0, 3000), st.integers(30000, 70000), st.integers(-10, -1)),
    max_size=25,
).map(lambda requests: resolve(requests))


def resolve(requests: list[int]) -> list[int]:
    """Turn the negative requests of `sizes` into payload sizes (payloads get a 4-byte prefix)."""
    result: list[int] = []
    for request in requests:
        if request < 0:
            spans = layout([4 + size for size in result])
            pos = spans[-1][-1][1] if spans else len(FILE_HEADER)
            room = BLOCK_SIZE - pos % BLOCK_SIZE
            room = BLOCK_SIZE if room < HEADER_SIZE else room
            request = max(0, room - HEADER_SIZE - (-1 - request) - 4)
        result.append(request)
    return result


def layout(sizes: list[int]) -> list[list[Span]]:
    """Byte ranges [start, end) of the chunks of records of these payload sizes, per the spec."""
    records: list[list[Span]] = []
    pos, left = len(FILE_HEADER), 0
    for size in sizes:
        chunks: list[Span] = []
        left = size
        while True:
            room = BLOCK_SIZE - pos % BLOCK_SIZE
            if room < HEADER_SIZE:
                pos += room  # trailer padding
                room = BLOCK_SIZE
            n = min(left, room - HEADER_SIZE)
            chunks.append((pos, pos + HEADER_SIZE + n))
            pos += HEADER_SIZE + n
            left -= n
            if left == 0:
                break
        records.append(chunks)
    return records


def make_payloads(sizes: list[int], seed: int) -> list[bytes]:
    """Distinct payloads (each starts with its index) of len 4 + size."""
    rng = random.Random(seed)
    return [struct.pack("<I", i) + rng.randbytes(size) for i, size in enumerate(sizes)]


def write(path: Path, payloads: list[bytes]) -> None:
    with LogWriter.create(path) as writer:
        for payload in payloads:
            writer.append(payload)
    assert writer.bytes_written == writer.bytes_synced == path.stat().st_size


def block_of(offset: int) -> int:
    return offset - offset % BLOCK_SIZE


@settings(max_examples=60, deadline=None)
@given(sizes=sizes, seed=st.integers(0, 2**32))
def test_round_trip_and_layout(sizes: list[int], seed: int) -> None:
    payloads = make_payloads(sizes, seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log"
        write(path, payloads)
        spans = layout([len(p) for p in payloads])
        assert path.stat().st_size == (spans[-1][-1][1] if spans else len(FILE_HEADER))
        reports: list[Corruption] = []
        assert list(read_log(path, reports.append)) == payloads
        assert reports == []


@settings(max_examples=200, deadline=None)
@given(
    sizes=sizes,
    seed=st.integers(0, 2**32),
    flips=st.lists(st.tuples(st.integers(0, 2**32), st.integers(1, 255)), max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 2**32)),
)
def test_damage_loses_only_what_is_reported_or_torn(
    sizes: list[int], seed: int, flips: list[tuple[int, int]], cut: int | None
) -> None:
    payloads = make_payloads(sizes, seed)
    spans = layout([len(p) for p in payloads])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log"
        write(path, payloads)
        data = bytearray(path.read_bytes())
        body = len(data) - len(FILE_HEADER)  # the file header is tested on its own
        flipped = sorted({len(FILE_HEADER) + where % body for where, _ in flips}) if body else []
        for offset, (_, mask) in zip(flipped, flips, strict=False):
            data[offset] ^= mask
        end = len(data) if cut is None else len(FILE_HEADER) + cut % (body + 1)
        path.write_bytes(bytes(data[:end]))

        reports: list[Corruption] = []
        recovered = list(read_log(path, reports.append))

    # Nothing invented, nothing reordered: the recovered payloads are originals, in order.
    indices = [struct.unpack_from("<I", p)[0] for p in recovered]
    assert indices == sorted(set(indices))
    assert all(payloads[i] == p for i, p in zip(indices, recovered, strict=True))

    def damaged_before(chunk: Span) -> bool:
        """A flipped byte from the start of the chunk's block to the chunk's end costs it."""
        return any(block_of(chunk[0]) <= f < chunk[1] for f in flipped)

    # Every record whose chunks are whole and undamaged survives.
    for i, chunks in enumerate(spans):
        if all(b <= end and not damaged_before((a, b)) for a, b in chunks):
            assert i in indices, (i, chunks, flipped, end, reports)

    # Every lost record overlaps a reported range, or was cut off by the end of the file, or sits
    # after a flip in the last short block (a flipped length there looks exactly like a torn tail).
    last_block = block_of(end) if end % BLOCK_SIZE else None
    for i in set(range(len(spans))) - set(indices):
        chunks = spans[i]
        reported = any(a < r.offset + r.length and r.offset < b for a, b in chunks for r in reports)
        torn = chunks[-1][1] > end
        hidden = any(block_of(a) == last_block and damaged_before((a, b)) for a, b in chunks)
        assert reported or torn or hidden, (i, chunks, flipped, end, reports)

    # Reports are ascending, disjoint, non-empty and inside the file.
    previous_end = len(FILE_HEADER)
    for r in reports:
        assert r.length > 0 and previous_end <= r.offset and r.offset + r.length <= end, reports
        previous_end = r.offset + r.length


@settings(max_examples=100, deadline=None)
@given(sizes=sizes, more=sizes, seed=st.integers(0, 2**32), cut=st.integers(0, 2**32))
def test_append_after_truncation_keeps_every_whole_record(
    sizes: list[int], more: list[int], seed: int, cut: int
) -> None:
    payloads = make_payloads(sizes, seed)
    extra = [b"new" + p for p in make_payloads(more, seed + 1)]
    spans = layout([len(p) for p in payloads])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log"
        write(path, payloads)
        end = cut % (path.stat().st_size + 1)  # anywhere, file header included
        with open(path, "r+b") as f:
            f.truncate(end)
        reports: list[Corruption] = []
        with LogWriter.open_for_append(path, reports.append) as writer:
            for payload in extra:
                writer.append(payload)
        whole = [p for p, chunks in zip(payloads, spans, strict=True) if chunks[-1][1] <= end]
        assert list(read_log(path, reports.append)) == whole + extra
        assert reports == []

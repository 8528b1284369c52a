"""The transaction log, byte by byte: write, damage chosen bytes, assert what is read and reported.

Offsets are worked out by hand from docs/log-format.md: the file header is 9 bytes, a chunk
header 7, a block 32768. Records of 1000 bytes are 1007-byte chunks, so record k < 32 starts at
9 + 1007 * k; record 32 is split into FIRST (32233..32768) and LAST (32768..33247).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.txlog import (
    BLOCK_SIZE,
    FILE_HEADER,
    FIRST,
    FULL,
    LAST,
    MIDDLE,
    Corruption,
    LogFormatError,
    LogWriter,
    iter_records,
    read_log,
)


def write(path: Path, payloads: list[bytes]) -> None:
    with LogWriter.create(path) as writer:
        for payload in payloads:
            writer.append(payload)


def read(path: Path) -> tuple[list[bytes], list[Corruption]]:
    reports: list[Corruption] = []
    return list(read_log(path, reports.append)), reports


def chunk(ctype: int, payload: bytes) -> bytes:
    """One chunk, encoded independently of the writer."""
    return struct.pack("<IHB", zlib.crc32(bytes([ctype]) + payload), len(payload), ctype) + payload


def patch(path: Path, offset: int, new: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[offset : offset + len(new)] = new
    path.write_bytes(bytes(data))


RECORDS = [bytes([k]) * 1000 for k in range(40)]


def test_worked_example_from_the_spec(tmp_path: Path) -> None:
    path = tmp_path / "log"
    write(path, [pb.Record(num=1, final=pb.FinalRecord()).SerializeToString()])
    expected = "89 4e 42 54 4c 4f 47 0a 01 55 b7 a6 3f 05 00 01 08 01 aa 01 00"
    assert path.read_bytes().hex(" ") == expected


def test_empty_log_is_just_the_header(tmp_path: Path) -> None:
    write(tmp_path / "log", [])
    assert (tmp_path / "log").read_bytes() == FILE_HEADER
    assert read(tmp_path / "log") == ([], [])


def test_round_trip_including_empty_payloads(tmp_path: Path) -> None:
    payloads = [b"", b"a", b"", RECORDS[1], b"\x00" * 7]
    write(tmp_path / "log", payloads)
    assert read(tmp_path / "log") == (payloads, [])


def test_record_filling_block_zero_exactly(tmp_path: Path) -> None:
    write(tmp_path / "log", [b"x" * (BLOCK_SIZE - 9 - 7), b"b"])
    data = (tmp_path / "log").read_bytes()
    assert len(data) == BLOCK_SIZE + 8 and data[BLOCK_SIZE + 6] == FULL
    assert read(tmp_path / "log") == ([b"x" * (BLOCK_SIZE - 16), b"b"], [])


def test_fewer_than_seven_bytes_left_are_zero_padding(tmp_path: Path) -> None:
    write(tmp_path / "log", [b"x" * (BLOCK_SIZE - 9 - 7 - 3), b"b"])
    data = (tmp_path / "log").read_bytes()
    assert data[BLOCK_SIZE - 3 : BLOCK_SIZE] == b"\0\0\0"
    assert data[BLOCK_SIZE + 6] == FULL and len(data) == BLOCK_SIZE + 8
    assert read(tmp_path / "log")[0] == [b"x" * (BLOCK_SIZE - 19), b"b"]


def test_exactly_seven_bytes_left_hold_an_empty_first_chunk(tmp_path: Path) -> None:
    write(tmp_path / "log", [b"x" * (BLOCK_SIZE - 9 - 7 - 7), b"0123456789"])
    data = (tmp_path / "log").read_bytes()
    assert data[BLOCK_SIZE - 7 :] == chunk(FIRST, b"") + chunk(LAST, b"0123456789")
    assert read(tmp_path / "log") == ([b"x" * (BLOCK_SIZE - 23), b"0123456789"], [])


def test_record_spanning_four_blocks(tmp_path: Path) -> None:
    big = bytes(range(256)) * 390 + b"end"  # 99,843 bytes
    write(tmp_path / "log", [big, b"after"])
    data = (tmp_path / "log").read_bytes()
    assert [data[k * BLOCK_SIZE + 6] for k in range(1, 4)] == [MIDDLE, MIDDLE, LAST]
    assert data[15] == FIRST
    assert len(data) == 3 * BLOCK_SIZE + 7 + (len(big) - 32752 - 2 * 32761) + 12
    assert read(tmp_path / "log") == ([big, b"after"], [])


def test_bad_checksum_skips_the_rest_of_the_block(tmp_path: Path) -> None:
    write(tmp_path / "log", RECORDS)
    patch(tmp_path / "log", 3030 + 7 + 10, b"\xff")  # inside record 3's payload
    payloads, reports = read(tmp_path / "log")
    assert payloads == RECORDS[:3] + RECORDS[33:]
    assert reports == [
        Corruption(3030, BLOCK_SIZE - 3030, "bad checksum"),
        Corruption(BLOCK_SIZE, 479, "chunk of a record whose first chunk is missing"),
    ]


def test_damage_in_the_middle_of_a_fragmented_record(tmp_path: Path) -> None:
    write(tmp_path / "log", RECORDS)
    patch(tmp_path / "log", BLOCK_SIZE + 4, b"\xff\xff")  # length of record 32's LAST chunk
    payloads, reports = read(tmp_path / "log")
    assert payloads == RECORDS[:32]  # records 33..39 were all in block 1, after the damage
    assert reports == [
        Corruption(32233, BLOCK_SIZE - 32233, "record cut short by the damage that follows"),
        # The file ends in block 1, at 33247 + 7 * 1007 = BLOCK_SIZE + 7528.
        Corruption(BLOCK_SIZE, 7528, "chunk length 65535 runs past the end of its block"),
    ]


def test_unknown_type_and_zeros_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "log"
    block_zero = FILE_HEADER + chunk(FULL, b"a") + chunk(9, b"b")
    path.write_bytes(block_zero + bytes(BLOCK_SIZE - len(block_zero)) + chunk(FULL, b"c"))
    payloads, reports = read(path)
    assert payloads == [b"a", b"c"]
    assert reports == [Corruption(9 + 8, BLOCK_SIZE - 17, "unknown chunk type 9")]
    path.write_bytes(FILE_HEADER + chunk(FULL, b"a") + bytes(20))
    assert read(path) == ([b"a"], [Corruption(17, 20, "zeros where a chunk should be")])


def test_chunks_out_of_order_drop_only_the_broken_record(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(
        FILE_HEADER + chunk(FIRST, b"a") + chunk(FULL, b"b") + chunk(MIDDLE, b"c") + chunk(FIRST, b"d")
        # A FIRST left open at the end of the file is a torn tail: dropped, not reported.
    )
    payloads, reports = read(path)
    assert payloads == [b"b"]
    assert reports == [
        Corruption(9, 8, "record whose last chunk is missing"),
        Corruption(25, 8, "chunk of a record whose first chunk is missing"),
    ]


@pytest.mark.parametrize(
    ("size", "kept"),
    [
        (9 + 2 * 1007 + 3, 2),  # inside record 2's chunk header
        (9 + 2 * 1007 + 507, 2),  # inside its payload
        (BLOCK_SIZE, 32),  # record 32's FIRST chunk is whole, its LAST chunk missing
        (BLOCK_SIZE + 100, 32),  # inside record 32's LAST chunk
        (33247, 33),  # exactly after record 32
    ],
)
def test_torn_tail_is_a_clean_end(tmp_path: Path, size: int, kept: int) -> None:
    write(tmp_path / "log", RECORDS)
    with open(tmp_path / "log", "r+b") as f:
        f.truncate(size)
    assert read(tmp_path / "log") == (RECORDS[:kept], [])


@pytest.mark.parametrize("size", range(len(FILE_HEADER)))
def test_torn_file_header_is_an_empty_log(tmp_path: Path, size: int) -> None:
    (tmp_path / "log").write_bytes(FILE_HEADER[:size])
    assert read(tmp_path / "log") == ([], [])
    with LogWriter.open_for_append(tmp_path / "log") as writer:
        writer.append(b"a")
    assert read(tmp_path / "log") == ([b"a"], [])


@pytest.mark.parametrize(
    ("head", "message"),
    [(b"PK\x03\x04 not a log", "bad magic"), (FILE_HEADER[:-1] + b"\x02", "version 2 cannot be read")],
)
def test_a_file_that_is_not_a_log_raises(tmp_path: Path, head: bytes, message: str) -> None:
    (tmp_path / "log").write_bytes(head + chunk(FULL, b"a"))
    with pytest.raises(LogFormatError, match=message):
        list(read_log(tmp_path / "log"))
    with pytest.raises(LogFormatError, match=message):
        LogWriter.open_for_append(tmp_path / "log")
    assert (tmp_path / "log").read_bytes() == head + chunk(FULL, b"a")  # never truncated


def test_create_refuses_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "log").write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        LogWriter.create(tmp_path / "log")
    assert (tmp_path / "log").read_bytes() == b"precious"


def test_open_for_append_after_a_torn_tail(tmp_path: Path) -> None:
    write(tmp_path / "log", RECORDS)
    with open(tmp_path / "log", "r+b") as f:
        f.truncate(BLOCK_SIZE + 100)  # inside record 32's LAST chunk
    reports: list[Corruption] = []
    with LogWriter.open_for_append(tmp_path / "log", reports.append) as writer:
        assert writer.bytes_written == writer.bytes_synced == 32233
        writer.append(b"x" * 523)  # leaves 5 bytes in block 0: the next record pads them
        writer.append(b"y" * 2000)
        assert writer.bytes_written == BLOCK_SIZE + 2007
    assert reports == []
    assert read(tmp_path / "log") == ([*RECORDS[:32], b"x" * 523, b"y" * 2000], [])


def test_open_for_append_drops_a_corrupt_tail_and_reports_it(tmp_path: Path) -> None:
    write(tmp_path / "log", RECORDS[:5])
    patch(tmp_path / "log", 3030 + 7, b"\xff")  # record 3
    reports: list[Corruption] = []
    with LogWriter.open_for_append(tmp_path / "log", reports.append) as writer:
        writer.append(b"new")
    assert reports == [Corruption(3030, 2 * 1007, "bad checksum")]
    assert (tmp_path / "log").stat().st_size == 3030 + 10
    assert read(tmp_path / "log") == ([*RECORDS[:3], b"new"], [])


def test_buffering_flush_and_sync(tmp_path: Path) -> None:
    path = tmp_path / "log"
    writer = LogWriter.create(path)
    writer.append(b"a")
    assert (writer.bytes_written, writer.bytes_synced, path.stat().st_size) == (17, 0, 9)
    writer.flush()
    assert (writer.bytes_synced, path.stat().st_size) == (0, 17)
    writer.sync()
    assert writer.bytes_synced == 17
    for _ in range(300):  # 300 KiB passes the 256 KiB buffer: written without an explicit flush
        writer.append(b"z" * 1024)
    assert path.stat().st_size > 256 * 1024
    writer.close()
    writer.close()
    assert writer.bytes_synced == writer.bytes_written == path.stat().st_size
    with pytest.raises(ValueError, match="closed"):
        writer.append(b"late")
    with pytest.raises(ValueError, match="closed"):
        writer.sync()


def test_iter_records_parses_and_reports_what_does_not(tmp_path: Path) -> None:
    good = [pb.Record(num=1, header=pb.HeaderRecord(version="0.1")), pb.Record(num=2, final=pb.FinalRecord())]
    payloads = [good[0].SerializeToString(), b"\xff\xff", good[1].SerializeToString()]
    write(tmp_path / "log", payloads)
    reports: list[Corruption] = []
    assert list(iter_records(tmp_path / "log", reports.append)) == good
    assert len(reports) == 1
    assert (reports[0].offset, reports[0].length) == (9 + 7 + len(payloads[0]), 9)
    assert reports[0].reason.startswith("not a Record")

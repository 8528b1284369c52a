"""`dump`: one JSON line per record, *_json fields shown as JSON, damage summarised on err."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest

from nbtrack import jsonutil
from nbtrack.internal.dump import dump
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.txlog import LogFormatError, LogWriter


def write(path: Path, payloads: list[bytes]) -> None:
    with LogWriter.create(path) as writer:
        for payload in payloads:
            writer.append(payload)


def run_dump(path: Path) -> tuple[int, list[object], str]:
    out, err = io.StringIO(), io.StringIO()
    count = dump(path, out, err)
    return count, [jsonutil.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_records_become_json_lines_with_json_fields_decoded(tmp_path: Path) -> None:
    records = [
        pb.Record(num=1, header=pb.HeaderRecord(version="0.1.0")),
        pb.Record(num=2, run=pb.RunRecord(run_id="abc", config_json=b'{"lr":0.1}', tags=["a"])),
        pb.Record(num=3, history=pb.HistoryRecord(step=7, data_json=b'{"loss":NaN,"a/b":[1,2]}')),
        pb.Record(num=4, summary=pb.SummaryRecord(update_json=b"not json", remove=["x"])),
        pb.Record(num=5, final=pb.FinalRecord()),
    ]
    write(tmp_path / "log", [r.SerializeToString() for r in records])
    count, lines, err = run_dump(tmp_path / "log")
    assert (count, err) == (5, "")
    history = lines[2]
    assert isinstance(history, dict) and math.isnan(history["history"]["data_json"].pop("loss"))
    assert lines == [
        {"num": "1", "header": {"version": "0.1.0"}},  # int64 is a string in protobuf's JSON mapping
        {"num": "2", "run": {"run_id": "abc", "tags": ["a"], "config_json": {"lr": 0.1}}},
        {"num": "3", "history": {"step": "7", "data_json": {"a/b": [1, 2]}}},
        {"num": "4", "summary": {"update_json": "bm90IGpzb24=", "remove": ["x"]}},  # kept as base64
        {"num": "5", "final": {}},
    ]


def test_damage_is_summarised_in_one_line(tmp_path: Path) -> None:
    first, second = (pb.Record(num=n, final=pb.FinalRecord()).SerializeToString() for n in (1, 2))
    write(tmp_path / "log", [first, b"\xff\xff", second, second])
    bad_record = 9 + 7 + len(first)
    bad_chunk = bad_record + 7 + 2 + 7 + len(second)
    data = bytearray((tmp_path / "log").read_bytes())
    data[bad_chunk + 7] ^= 1  # the last record's payload: its checksum fails
    (tmp_path / "log").write_bytes(bytes(data))

    count, lines, err = run_dump(tmp_path / "log")
    assert (count, len(lines)) == (2, 2)
    assert err.startswith(
        f"corruption: 2 ranges, {9 + len(data) - bad_chunk} bytes skipped (offset {bad_record}: "
    )
    assert err.endswith(f"; offset {bad_chunk}: bad checksum)\n")


def test_an_empty_log_prints_nothing(tmp_path: Path) -> None:
    write(tmp_path / "log", [])
    assert run_dump(tmp_path / "log") == (0, [], "")


def test_a_file_that_is_not_a_log_raises(tmp_path: Path) -> None:
    (tmp_path / "log").write_bytes(b"hello, world")
    with pytest.raises(LogFormatError, match="not an nbtrack transaction log"):
        run_dump(tmp_path / "log")

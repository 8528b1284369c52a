"""Random protobuf Records round-trip through the transaction log, and survive random damage."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbtrack import jsonutil
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.txlog import BLOCK_SIZE, Corruption, LogWriter, iter_records

_counter = itertools.count()

json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=20),
)
rows = st.dictionaries(st.text(min_size=1, max_size=12), json_values, max_size=8)


def history(step: int, row: dict[str, object]) -> pb.Record:
    record = pb.Record(num=step + 1)
    record.history.step = step
    record.history.data_json = jsonutil.dumps(row)
    return record


records = st.lists(
    st.one_of(
        st.builds(history, st.integers(0, 2**40), rows),
        st.builds(lambda row: pb.Record(config=pb.ConfigRecord(update_json=jsonutil.dumps(row))), rows),
        st.builds(lambda line: pb.Record(output=pb.OutputRecord(line=line)), st.text(max_size=3000)),
        st.builds(lambda code: pb.Record(exit=pb.ExitRecord(exit_code=code)), st.integers(-255, 255)),
    ),
    max_size=60,
)


def write(path: Path, items: list[pb.Record]) -> None:
    with LogWriter.create(path) as log:
        for record in items:
            log.append(record.SerializeToString())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=records)
def test_records_round_trip(tmp_path: Path, items: list[pb.Record]) -> None:
    path = tmp_path / f"{next(_counter)}.nbt"
    write(path, items)
    reports: list[Corruption] = []
    assert list(iter_records(path, reports.append)) == items
    assert reports == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=records, where=st.floats(0, 1), cut=st.booleans())
def test_damaged_records_are_skipped_or_reported_never_invented(
    tmp_path: Path, items: list[pb.Record], where: float, cut: bool
) -> None:
    path = tmp_path / f"{next(_counter)}.nbt"
    write(path, items)
    data = bytearray(path.read_bytes())
    at = 9 + int(where * (len(data) - 10)) if len(data) > 10 else len(data)
    if cut:
        del data[at:]
    elif at < len(data):
        data[at] ^= 0x5A
    path.write_bytes(bytes(data))
    reports: list[Corruption] = []
    recovered = list(iter_records(path, reports.append))
    serialized = [r.SerializeToString() for r in items]
    # What comes back is a subsequence of what was written, in order; nothing is invented.
    position = 0
    for record in recovered:
        position = serialized.index(record.SerializeToString(), position) + 1
    last_block = (len(data) - 1) // BLOCK_SIZE * BLOCK_SIZE
    if len(recovered) < len(items) and not cut and at < last_block:
        # (damage inside the last, partly written block can look exactly like a torn tail)
        assert reports, "records were lost to damage without a report"

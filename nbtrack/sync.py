"""`nbtrack sync PATH`: replay transaction logs into the store with the sender's own code.

Replaying is idempotent because the sender addresses history and console lines by their line
number in the run: a second sync writes the same lines to the same places.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nbtrack.internal.sender import Sender
from nbtrack.internal.txlog import Corruption, iter_records
from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["SyncReport", "find_logs", "sync_log"]

BATCH = 5000


@dataclass
class SyncReport:
    """What one log delivered."""

    path: Path
    run: str = ""  # entity/project/run_id
    rows: int = 0
    state: str = ""
    complete: bool = False  # the log has its exit record
    corruption: list[Corruption] = field(default_factory=list)
    error: str | None = None


def find_logs(path: str | os.PathLike[str]) -> Iterator[Path]:
    """PATH itself if it is a log, else every *.nbt under it, oldest folder first."""
    root = Path(path)
    if root.is_file():
        yield root
    elif root.is_dir():
        yield from sorted(root.rglob("*.nbt"))
    else:
        raise FileNotFoundError(f"no transaction log at {root}")


def sync_log(path: Path, store_url: str) -> SyncReport:
    """Deliver one log to the store at store_url; a log without its exit record ends `crashed`."""
    report = SyncReport(path=path)
    errors: list[str] = []

    def on_run_result(result: pb.Result) -> None:
        if result.WhichOneof("result_type") == "run_result" and result.run_result.error.message:
            errors.append(result.run_result.error.message)

    sender = Sender(on_run_result, errors.append, setup=pb.SetupRequest(mode="local", store_url=store_url))
    batch: list[pb.Record] = []
    try:
        for record in iter_records(path, on_corruption=report.corruption.append):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                report.run = f"{record.run.entity}/{record.run.project}/{record.run.run_id}"
            elif kind == "history":
                report.rows += 1
            elif kind == "exit":
                report.complete = True
                report.state = record.exit.state or ("finished" if record.exit.exit_code == 0 else "failed")
            batch.append(record)
            if len(batch) >= BATCH:
                sender.handle(batch)
                batch = []
        if not report.run:
            report.error = "the log has no run record (nothing to deliver)"
            return report
        if not report.complete:
            report.state = "crashed"
            batch.append(pb.Record(exit=pb.ExitRecord(exit_code=-1, state="crashed")))
        sender.handle(batch)
    finally:
        sender.close()
    if errors:
        report.error = errors[0]
    return report

"""`nbtrack sync PATH`: replay transaction logs into the store or to a tracking server, with the
sender's own code.

Replaying is idempotent because the sender addresses history and console lines by their line
number in the run: a second sync writes the same lines to the same places, which also makes it
safe to sync a run whose live delivery was cut short.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nbtrack.internal.sender import Sender
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.txlog import Corruption, iter_records

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


def sync_log(
    path: Path,
    store_url: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> SyncReport:
    """Deliver one log to the store at store_url, or to the server at base_url; a log without its
    exit record ends `crashed`. on_notice hears what the sender says on the way (e.g. retrying)."""
    if (store_url is None) == (base_url is None):
        raise ValueError("sync_log() needs one destination: store_url or base_url")
    if base_url is not None:
        setup = pb.SetupRequest(mode="online", base_url=base_url, api_key=api_key or "", log_path=str(path))
    else:
        setup = pb.SetupRequest(mode="local", store_url=store_url or "", log_path=str(path))
    report = SyncReport(path=path)
    errors: list[str] = []

    def on_result(result: pb.Result) -> None:
        kind = result.WhichOneof("result_type")
        if kind == "run_result" and result.run_result.error.message:
            errors.append(result.run_result.error.message)
        elif kind == "exit_result" and result.exit_result.error.message:
            errors.append(result.exit_result.error.message)

    sender = Sender(on_result, on_notice or (lambda message: None), setup=setup)
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

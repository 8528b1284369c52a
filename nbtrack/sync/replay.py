"""`nbtrack sync PATH`: replay transaction logs into the store or to a tracking server, with the
sender's own code.

Replaying is idempotent because the sender addresses history and console lines by their line
number in the run: a second sync writes nothing the destination lacks, which also makes it safe
to sync a run whose live delivery was cut short. A replay never moves a run backwards
(`guard.py`): a log holding less than the destination is delivered only where it adds to it.
A log still being written is waited for, then refused (`live.py`). A damaged log delivers every
intact record, each history row at the line it had in the run (`scan.py`); if the damage took
the run record, the run is found by the log's name, the run's other segments or the destination.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nbtrack import jsonutil
from nbtrack.errors import NbtrackError
from nbtrack.internal.backend import Backend, StoreBackend, copy_whole, open_backend, run_files_dir
from nbtrack.internal.feed import ReadBatch
from nbtrack.internal.sender import Sender
from nbtrack.internal.summary import SummaryKeeper
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.sdk.resume import RunSource
from nbtrack.settings import DEFAULT_ENTITY, RUN_FILES, check_name, check_project
from nbtrack.store import Store
from nbtrack.sync.guard import GuardedBackend, Held, Plan, plan
from nbtrack.sync.live import lock_holder, segment_logs, wait_until_not_live
from nbtrack.sync.scan import Base, LogScan, run_id_of, scan_log, segment_folder
from nbtrack.txlog import Corruption, iter_records

if TYPE_CHECKING:
    from nbtrack.store.schema import ProjectRow, RunRow

__all__ = ["DEFAULT_WAIT", "SyncReport", "find_logs", "sync_log"]

DEFAULT_WAIT = 5.0  # seconds a sync waits for the process of a live run before refusing it


@dataclass
class SyncReport:
    """What one log delivered."""

    path: Path
    run: str = ""  # entity/project/run_id, or project/run_id when the destination decides the entity
    rows: int = 0  # intact history rows in the log
    state: str = ""  # the run's state at the destination after the sync
    complete: bool = False  # the log has its exit record
    corruption: list[Corruption] = field(default_factory=list)
    rows_lost: int = 0  # history rows the damaged ranges held (the later rows are placed after them)
    damaged_ranges: int = 0  # damaged ranges that held rows
    rows_unplaced: int = 0  # rows after a damaged range with no bound: not delivered
    delivered: bool = False  # False: the destination already had everything (see note)
    note: str = ""  # what the destination already held, if that kept the log from changing it
    files: int = 0  # run files copied that no record of the log announced (written late)
    error: str | None = None


class _Source(RunSource, Protocol):
    """What sync reads of its destination: the store itself, or a server's `ServerReader`."""

    def list_projects(self, entity: str | None = None) -> list[ProjectRow]: ...


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
    wait: float = DEFAULT_WAIT,
    project: str | None = None,
) -> SyncReport:
    """Deliver one log to the store at store_url, or to the server at base_url.

    A log without its exit record ends `crashed` if the run was not stored further along. A log
    whose run is still being written is waited for up to `wait` seconds, then refused. project
    ("project" or "entity/project") names the run's project when the log's run record is lost.
    on_notice hears what happens on the way (waiting, the sender retrying).
    """
    if (store_url is None) == (base_url is None):
        raise ValueError("sync_log() needs one destination: store_url or base_url")
    named = None if project is None else _split_project(project)
    notice = on_notice or (lambda message: None)
    report = SyncReport(path=path)
    live = wait_until_not_live(
        path, wait, lambda log: notice(f"waiting up to {wait:g} s for the process writing {log} to end")
    )
    if live is not None:
        holder = lock_holder(live) or "another process"
        report.error = (
            f"the run is still being written: {holder} holds its log {live} (waited {wait:g} s); "
            "nothing was synced: sync it once that process has ended"
        )
        return report
    scan = scan_log(path, lambda: _segment_base(path))
    _describe(report, scan)
    local = store_url is not None
    try:
        source = _open_source(store_url, base_url, api_key)
        try:
            found = _look_up(path, scan, named, source, local)
        finally:
            source.close()
    except (NbtrackError, OSError) as exc:
        # What the destination holds decides what may be delivered: without it, nothing is.
        report.error = f"cannot read what the destination holds of the run: {exc}"
        return report
    if isinstance(found, str):
        report.error = found
        return report
    run, held = found
    stored = held.run if held is not None else None
    # A server decides the entity of a run it does not hold yet (its key's): unknown here, the run
    # is named by project/run_id alone.
    entity = run.entity or (stored.entity if stored else DEFAULT_ENTITY if local else "")
    report.run = "/".join(part for part in (entity, run.project, run.run_id) if part)
    decided = plan(scan, held)
    _prepare(run, scan, stored)
    report.note = decided.reason
    if not decided.deliver:
        report.state = stored.state if stored is not None else ""
        late = unannounced_files(path, scan.files)
        if late and store_url is not None:  # the rows are all there; files written late may not be
            report.files = _copy_files(path, late, run_files_dir(store_url, entity, run.project, run.run_id))
        elif late:
            report.note += f"; {len(late)} run files no record of the log announces were not uploaded"
        if scan.artifacts:
            report.error = _deliver_artifacts(path, run, entity, store_url, base_url, api_key)
        return report
    report.error = _deliver(path, scan, run, decided, store_url, base_url, api_key, notice)
    report.delivered = True
    if report.error is None:  # else the destination's state is not known: never claim the plan's
        report.state = decided.state
    return report


def _look_up(
    path: Path, scan: LogScan, project: tuple[str, str] | None, source: _Source, local: bool
) -> tuple[pb.RunRecord, Held | None] | str:
    """The run (the log's run record, or one standing in for it) and what the destination holds
    of it; or why the run cannot be told."""
    run, why = _run_record(path, scan, project, source)
    if run is None:
        return why
    if not local and run.entity == DEFAULT_ENTITY:
        # An offline run names no entity of its own: "local" stands for "the default" (as on a
        # server without keys), so a server gives the run its key's entity.
        run.entity = ""
    stored = source.get_run(run.entity or (DEFAULT_ENTITY if local else None), run.project, run.run_id)
    if stored is None:
        return run, None
    key = (stored.entity, stored.project, stored.run_id)
    # The store says which lines it lacks; a server only how many it has.
    gaps = source.history_gaps(*key) if isinstance(source, Store) else None
    return run, Held(stored, gaps, len(source.read_output(*key)), len(source.read_events(*key)))


def _describe(report: SyncReport, scan: LogScan) -> None:
    report.rows = scan.rows
    report.complete = scan.complete
    report.corruption = scan.corruption
    report.rows_lost, report.damaged_ranges = scan.rows_lost, scan.damaged_ranges
    if scan.unplaced_from is not None:
        report.rows_unplaced = scan.rows - scan.unplaced_from


def _deliver(
    path: Path,
    scan: LogScan,
    run: pb.RunRecord,
    decided: Plan,
    store_url: str | None,
    base_url: str | None,
    api_key: str | None,
    notice: Callable[[str], None],
) -> str | None:
    """Replay the log through the sender, its run record replaced by run; the first error, if any."""
    if base_url is not None:
        setup = pb.SetupRequest(mode="online", base_url=base_url, api_key=api_key or "", log_path=str(path))
    else:
        setup = pb.SetupRequest(mode="local", store_url=store_url or "", log_path=str(path))
    errors: list[str] = []

    def on_result(result: pb.Result) -> None:
        kind = result.WhichOneof("result_type")
        if kind == "run_result" and result.run_result.error.message:
            errors.append(result.run_result.error.message)
        elif kind == "exit_result" and result.exit_result.error.message:
            errors.append(result.exit_result.error.message)

    def opener(setup: pb.SetupRequest, record: pb.RunRecord, notice: Callable[[str], None]) -> Backend:
        inner: Backend | None
        if setup.mode == "local":
            # The state is the plan's to set, at the end: never "running" on the way there.
            inner = StoreBackend(setup.store_url, record, start_state=None)
        else:
            inner = open_backend(setup, record, notice)
        assert inner is not None
        return GuardedBackend(inner, scan, decided, record.history_offset)

    sender = Sender(on_result, notice, setup=setup, backend_opener=opener)
    # The run ended without its exit record: its last rows may be missing from its last summary
    # record. Then the summary is rebuilt from the log, as a recovered internal process does.
    summary = SummaryKeeper() if not scan.complete and scan.summary_stale else None
    try:
        for batch in _batches(path, run, scan.run is None, summary):
            sender.handle(batch)
        end: list[pb.Record] = []
        unannounced = unannounced_files(path, scan.files)
        if unannounced:
            files = [pb.FilesRecord.File(path=name, policy="now") for name in unannounced]
            end.append(pb.Record(files=pb.FilesRecord(files=files)))
        if summary is not None:
            rebuilt = pb.SummaryRecord(update_json=jsonutil.dumps(summary.values), full=True)
            end.append(pb.Record(summary=rebuilt))
        if not scan.complete:
            end.append(pb.Record(exit=pb.ExitRecord(exit_code=-1, state="crashed", runtime=scan.runtime)))
        sender.handle(end)
    finally:
        sender.close()
    return errors[0] if errors else None


def _deliver_artifacts(
    path: Path,
    run: pb.RunRecord,
    entity: str,
    store_url: str | None,
    base_url: str | None,
    api_key: str | None,
) -> str | None:
    """The log's artifact records alone, for a destination that holds its rows: a version whose
    delivery was refused (or lost since) may still be missing there. Idempotent: a version of the
    same digest is that version, a use is kept once. The first error, if any."""
    log_artifact: Callable[[pb.ArtifactRecord, Path], object]
    use_artifact: Callable[[pb.UseArtifactRecord], object]
    if store_url is not None:
        record = pb.RunRecord()
        record.CopyFrom(run)
        record.entity = entity
        backend = StoreBackend(store_url, record, start_state=None)
        log_artifact, use_artifact, close = backend.log_artifact, backend.use_artifact, backend.close
    else:
        from nbtrack.online.artifact_records import send_artifact, send_artifact_use
        from nbtrack.online.client import ServerClient

        client = ServerClient(base_url or "", api_key)
        key = (entity, run.project, run.run_id)
        log_artifact = functools.partial(send_artifact, client, key)
        use_artifact = functools.partial(send_artifact_use, client, key)
        close = client.close
    try:
        for logged in iter_records(path):  # damage was reported by the scan
            kind = logged.WhichOneof("record_type")
            if kind == "artifact":
                log_artifact(logged.artifact, path.parent / logged.artifact.staged)
            elif kind == "use_artifact":
                use_artifact(logged.use_artifact)
    except (NbtrackError, OSError, ValueError) as exc:
        return f"could not deliver the run's artifacts: {exc}"
    finally:
        close()
    return None


def unannounced_files(path: Path, announced: set[str]) -> list[str]:
    """Files in the run folder that no record of the log announces: media written after the run
    stopped waiting for them (finish(timeout=)), or whose record the log lost. Whole files only
    (a file is written under a `.partial` name, then renamed)."""
    files = path.parent / RUN_FILES
    if not files.is_dir():
        return []
    found = (p.relative_to(files).as_posix() for p in files.rglob("*") if p.is_file())
    return sorted(name for name in found if name not in announced and not name.endswith(".partial"))


def _copy_files(path: Path, names: list[str], target: Path | None) -> int:
    """Copy run files from the log's folder into the store's files folder as the sender's local
    backend does (whole files only); how many."""
    if target is None:
        return 0
    for name in names:
        copy_whole(path.parent / RUN_FILES / name, target / name)
    return len(names)


def _batches(
    path: Path, run: pb.RunRecord, run_lost: bool, summary: SummaryKeeper | None
) -> Iterator[list[pb.Record]]:
    """The log's records (its run record replaced by run, or run first if the log lost it), in
    batches bounded as the sender's read-back is; each also applied to summary, if given."""
    batch = ReadBatch()
    first = [pb.Record(run=run)] if run_lost else []
    for record in itertools.chain(first, iter_records(path)):  # damage was reported by the scan
        if record.HasField("run"):
            record = pb.Record(num=record.num, control=record.control, run=run)
        if summary is not None:
            summary.apply(record)
        size = record.ByteSize()
        if not batch.has_room(size):
            yield batch.records
            batch = ReadBatch()
        batch.add(record, size)
    yield batch.records


def _open_source(store_url: str | None, base_url: str | None, api_key: str | None) -> _Source:
    if base_url is not None:
        from nbtrack.online.reader import ServerReader

        return ServerReader(base_url, api_key)
    return Store(store_url or "")


def _prepare(run: pb.RunRecord, scan: LogScan, stored: RunRow | None) -> None:
    """What the replay says of the run: what the destination knows of it where the log cannot
    say more. A config key keeps its first value, so the stored config holds the log's."""
    if stored is None:
        return
    config: dict[str, Any] = jsonutil.loads(run.config_json) if run.config_json else {}
    run.config_json = jsonutil.dumps({**config, **stored.config})
    if scan.run is None:
        run.display_name = stored.display_name or ""
        run.notes = stored.notes or ""
        run.tags[:] = stored.tags
        run.group, run.job_type = stored.group or "", stored.job_type or ""
        run.host, run.program = stored.host or "", stored.program or ""


def _run_record(
    path: Path, scan: LogScan, project: tuple[str, str] | None, source: _Source
) -> tuple[pb.RunRecord | None, str]:
    """The log's run record, or one standing in for it when damage took it (else why not)."""
    if scan.run is not None:
        run = pb.RunRecord()
        run.CopyFrom(scan.run)
        return run, ""
    run_id = run_id_of(path)
    if run_id is None:
        return None, "the log's run record is damaged and its file name does not say which run it is"
    where = _project_of(path, run_id, project, source)
    if isinstance(where, str):
        return None, where
    entity, name = where
    run = pb.RunRecord(run_id=run_id, entity=entity, project=name, resumed=True)
    base = scan.base or Base()
    run.history_offset, run.starting_step = base.history_offset, base.starting_step
    run.output_offset, run.events_offset = base.output_offset, base.events_offset
    if scan.origin is not None:
        run.start_time = scan.origin  # with runtime_offset 0: _runtime as the rows have it
    return run, ""


def _split_project(project: str) -> tuple[str, str]:
    """("entity" or "", "project") of "project" or "entity/project"; UsageError if not names."""
    entity, _, name = project.rpartition("/")
    if entity:
        check_name(entity, "entity")
    return entity, check_project(name)


def _project_of(
    path: Path, run_id: str, project: tuple[str, str] | None, source: _Source
) -> tuple[str, str] | str:
    """(entity, project) of a run whose run record is lost, or why it cannot be told."""
    if project is not None:
        return project
    for log in segment_logs(path):
        if log != path:
            for record in iter_records(log):
                if record.HasField("run"):
                    return record.run.entity, record.run.project
                if record.HasField("history"):
                    break  # the run record comes before every row
    found = [
        (p.entity, p.name)
        for p in source.list_projects()
        if source.get_run(p.entity, p.name, run_id) is not None
    ]
    if len(found) == 1:
        return found[0]
    lost = f"the log's run record is damaged, and run {run_id!r}"
    if found:
        names = ", ".join(f"{e}/{n}" for e, n in found)
        return f"{lost} is in several projects ({names}): name one with --project"
    return f"{lost} is not at the destination yet: name its project with --project"


def _segment_base(log: Path) -> Base | None:
    """Where a segment whose run record is lost starts: line 0 for a run's first segment, else
    where the segment before it ended (if that log says so exactly)."""
    folder = segment_folder(log)
    if folder is None or not folder[1]:
        return Base()
    earlier = [path for path in segment_logs(log) if path.parent.name < log.parent.name]
    if not earlier:
        return None
    previous = earlier[-1]
    return scan_log(previous, lambda: _segment_base(previous)).next_base()

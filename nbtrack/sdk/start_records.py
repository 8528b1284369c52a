"""What a run's internal process is told when it starts: its setup and the run record."""

from __future__ import annotations

import sys
from typing import Any

from nbtrack import jsonutil
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.sdk.resume import ResumePoint
from nbtrack.settings import Settings

__all__ = ["run_record", "setup_request"]


def setup_request(settings: Settings, live_interval: float) -> pb.SetupRequest:
    """Where the run's log and store (or server) are; sent to each internal process it gets."""
    return pb.SetupRequest(
        mode=settings.mode,
        log_path=str(settings.log_path),
        store_url=settings.store_url,
        base_url=settings.base_url or "",
        api_key=settings.api_key or "",
        live_interval=live_interval,
        stats_interval=settings.stats_interval,
    )


def run_record(
    settings: Settings,
    *,
    name: str,
    config: dict[str, Any],
    tags: list[str],
    notes: str,
    group: str,
    job_type: str,
    resume_point: ResumePoint | None,
) -> pb.RunRecord:
    """The run as init() starts it; a resumed run goes on where resume_point says."""
    run = pb.RunRecord(
        run_id=settings.run_id,
        entity=settings.entity,
        project=settings.project,
        display_name=name,
        notes=notes,
        tags=tags,
        group=group,
        job_type=job_type,
        config_json=jsonutil.dumps(config),
        start_time=settings.start_time,
        program=sys.argv[0] if sys.argv and sys.argv[0] else "",
    )
    if resume_point is not None:
        run.resumed = True
        run.starting_step, run.runtime_offset = resume_point.next_step, resume_point.runtime
        run.history_offset, run.output_offset = resume_point.history_offset, resume_point.output_offset
        run.events_offset = resume_point.events_offset
        run.summary_json = jsonutil.dumps(resume_point.summary)
    return run

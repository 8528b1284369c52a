"""What a run's internal process is told when it starts: its setup and the run record."""

from __future__ import annotations

import sys
from typing import Any

from nbtrack import jsonutil
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.sdk.resume import ResumePoint
from nbtrack.settings import Settings

__all__ = ["program", "run_record", "setup_request"]

# What the run page's "Program" says of a notebook run whose kernel does not know its notebook.
UNKNOWN_NOTEBOOK = "a notebook (its name unknown to the kernel)"


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
        alive_interval=settings.alive_interval,
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
        program=program(),
    )
    if resume_point is not None:
        run.resumed = True
        run.starting_step, run.runtime_offset = resume_point.next_step, resume_point.runtime
        run.history_offset, run.output_offset = resume_point.history_offset, resume_point.output_offset
        run.events_offset = resume_point.events_offset
        run.summary_json = jsonutil.dumps(resume_point.summary)
    return run


def program() -> str:
    """What the run's "Program" is: the notebook's path for a run started in a Jupyter or VS Code
    kernel (the kernel's own launcher script says nothing), else the script run (sys.argv[0])."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    shell = _kernel_shell()
    if shell is None:
        return argv0
    notebook = _notebook_path(shell.user_ns)
    if notebook:
        return notebook
    return UNKNOWN_NOTEBOOK


def _kernel_shell() -> Any:
    """The IPython shell of the Jupyter kernel this process is, or None (a script, a plain REPL).
    IPython is only looked at when already imported: a script never pays for importing it."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    # A kernel's shell has its kernel; a terminal IPython's program is its own script.
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def _notebook_path(user_ns: dict[str, Any]) -> str | None:
    """The notebook's path as the kernel knows it: VS Code sets __vsc_ipynb_file__ (a full path),
    Jupyter __session__ / $JPY_SESSION_NAME (code capture reads those too); never found by asking a
    Jupyter server."""
    from nbtrack.extension.code_capture import notebook_name  # plain module: no IPython import

    vscode = user_ns.get("__vsc_ipynb_file__")
    if isinstance(vscode, str) and vscode:
        return vscode
    return notebook_name(user_ns)

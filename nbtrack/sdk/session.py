"""Module-level API: `nbtrack.init()`, `nbtrack.log()`, `nbtrack.finish()` and `nbtrack.run`.

`init()` has one seam, `init_hook`: the Jupyter extension sets it to supply defaults from its
configuration, a warm internal process, and a live panel for each run started in the kernel.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import nbtrack
from nbtrack import jsonutil
from nbtrack.errors import UsageError
from nbtrack.settings import Settings, check_writable, resolve_settings
from nbtrack.transport.process import InternalProcess

if TYPE_CHECKING:  # imported by init(), once the internal process is booting (see there)
    from nbtrack.sdk.resume import ResumePoint
    from nbtrack.sdk.run import Run

__all__ = ["InitHook", "finish", "init", "init_hook", "log"]

logger = logging.getLogger("nbtrack")
T = TypeVar("T")


class InitHook(Protocol):
    """What the Jupyter extension adds to init(); none of it may make init() fail."""

    live_interval: float

    def defaults(self) -> dict[str, Any]:
        """Settings to use where init() got None (project, mode, dir, base_url)."""

    def before_start(self) -> None:
        """Called before a run starts (e.g. to finish the previous run of the same cell)."""

    def take_process(self) -> InternalProcess | None:
        """A warm internal process, if one is ready."""

    def started(self, run: Run) -> None:
        """Called with every run started while the hook is installed."""


init_hook: InitHook | None = None


def init(
    project: str | None = None,
    name: str | None = None,
    id: str | None = None,
    config: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    notes: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    mode: str | None = None,
    dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    resume: str | None = None,
    entity: str | None = None,
    save_code: bool | None = None,
    console: bool | str | None = None,
) -> Run:
    """Start a run and make it `nbtrack.run`; arguments override NBTRACK_* environment variables.

    console: keep what a script prints (stdout and stderr) as the run's console lines (default
    on; False or "off", or NBTRACK_CONSOLE=off, turns it off). In a notebook the extension's
    capture does it (c.NBTrack.capture_console)."""
    hook = init_hook
    if hook is not None:
        defaults = _safely(hook.defaults) or {}
        project = project if project is not None else defaults.get("project")
        mode = mode if mode is not None else defaults.get("mode")
        dir = dir if dir is not None else defaults.get("dir")
        base_url = base_url if base_url is not None else defaults.get("base_url")
    settings = resolve_settings(
        project=project,
        entity=entity,
        id=id,
        mode=mode,
        dir=dir,
        base_url=base_url,
        api_key=api_key,
        resume=resume,
        console=console,
    )
    if save_code is not None and not isinstance(save_code, bool):
        raise TypeError(f"save_code must be True or False, not {type(save_code).__name__}")
    settings = dataclasses.replace(settings, save_code=save_code)
    if tags is not None and (isinstance(tags, str) or not all(isinstance(t, str) for t in tags)):
        raise TypeError("tags must be a list of str, e.g. tags=['baseline']")
    for what, value in (("name", name), ("notes", notes), ("group", group), ("job_type", job_type)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if settings.mode != "disabled":
        check_writable(settings)  # offline and online too: their log is in dir= (settings.py)
    process = None
    if hook is not None:
        _safely(hook.before_start)
        process = _safely(hook.take_process) if settings.mode != "disabled" else None
    if process is None and settings.mode != "disabled":
        # Spawned before the rest of the SDK is imported: the new interpreter boots on the
        # other core while this one imports (the first init() of a process pays both). A local
        # run's process imports the store meanwhile, rather than once its setup has come.
        process = InternalProcess(preload=settings.mode == "local")
    try:
        from nbtrack.sdk.run import Run

        resume_point = _resume_point(settings) if settings.mode != "disabled" else None
        if resume_point is not None:
            settings = dataclasses.replace(settings, resumed=True)
            config = _resumed_config(resume_point.config, config)
        run = Run(
            settings,
            name=name,
            config=config,
            tags=list(tags or []),
            notes=notes,
            group=group,
            job_type=job_type,
            process=process,
            live_interval=hook.live_interval if hook is not None else 0.0,
            resume_point=resume_point,
        )
    except BaseException:
        if process is not None and process.exitcode is None:
            process.kill()  # refused before the run started (a taken id, a changed config)
            process.close_pipes()
        raise
    nbtrack.run = run
    if hook is not None:
        _safely(lambda: hook.started(run))
    elif save_code:
        _save_script(run)
    return run


def _save_script(run: Run) -> None:
    """save_code=True outside a notebook: the script being run, as the run's code/<name>."""
    import __main__

    script = getattr(__main__, "__file__", None)
    if script and os.path.isfile(script):
        run.save(script, name=f"code/{os.path.basename(script)}")
    else:
        logger.warning("nbtrack: save_code=True, but there is no script file to save (interactive?)")


def _safely(call: Callable[[], T]) -> T | None:
    """The extension's part of init() is a nicety: a failure there is logged, never raised."""
    try:
        return call()
    except Exception:
        logger.exception("nbtrack: the Jupyter extension failed during init(); the run goes on without it")
        return None


def _resume_point(settings: Settings) -> ResumePoint | None:
    """Where a resumed run goes on, or None for a new run; a reused id without resume= is refused."""
    from nbtrack.sdk.resume import find_resume_point, segment_logs

    if settings.resume in ("allow", "must"):
        _check_not_live_here(settings)
        point = find_resume_point(settings)
        if point is None and settings.resume == "must":
            raise UsageError(f"resume='must' but there is no stored run {settings.run_id!r} to resume")
        return point
    existing = segment_logs(settings)
    if existing:
        raise UsageError(
            f"run id {settings.run_id!r} is already taken by {existing[0].parent}; pick another id, "
            "leave id= out, or continue that run with resume='allow'"
        )
    return None


def _check_not_live_here(settings: Settings) -> None:
    """A run live in this process holds its log's lock until it ends: resuming it would wait for
    a lock this very process holds, so say so at once."""
    from nbtrack.sdk.run import live_runs

    for run in live_runs():
        if run.id == settings.run_id and run.dir.parent == settings.root / "runs":
            raise UsageError(
                f"run {run.id!r} is live in this process: keep logging to it, or run.finish() it "
                "before resuming it"
            )


def _resumed_config(stored: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    """The stored config plus the keys init() adds; a key given another value is refused (as
    run.config refuses it), before anything starts."""
    merged = dict(stored)
    for key, value in (given or {}).items():
        if key in merged and jsonutil.dumps(merged[key]) != jsonutil.dumps(value):
            raise UsageError(
                f"config key {key!r} of the resumed run is {merged[key]!r}; refusing to change it to "
                f"{value!r}. Use a new key, or start a new run for new hyperparameters"
            )
        merged.setdefault(key, value)
    return merged


def log(data: dict[str, Any], step: int | None = None, commit: bool = True) -> None:
    """`nbtrack.run.log(...)`."""
    _current("nbtrack.log()").log(data, step=step, commit=commit)


def finish(exit_code: int = 0) -> None:
    """Finish `nbtrack.run`, if there is one."""
    if nbtrack.run is not None:
        nbtrack.run.finish(exit_code=exit_code)


def _current(what: str) -> Run:
    if nbtrack.run is None:
        raise UsageError(f"{what} needs a run: call nbtrack.init() first")
    return nbtrack.run

"""The extension's state in one kernel: the warm spare, the runs started here, and their panels.

`KernelTracker` is installed as `nbtrack.sdk.session.init_hook`. Everything it does on the user's
behalf (cell hooks, live updates, the final snapshot) is wrapped so that a broken tracker can
never break the notebook: failures are logged, never raised into a cell.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from nbtrack import jsonutil
from nbtrack.extension.code_capture import CODE_FILE, CodeLog, notebook_name
from nbtrack.extension.config import NBTrack
from nbtrack.extension.console import ConsoleCapture
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.run_names import readable_name
from nbtrack.sdk.run import Run
from nbtrack.transport.process import InternalProcess

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["KernelTracker", "TrackedRun"]

logger = logging.getLogger("nbtrack")
T = TypeVar("T")
MIN_UPDATE_GAP = 0.1  # seconds: a panel updates at most ten times a second


def guarded(call: Callable[[], T], what: str) -> T | None:
    """Run call; log and swallow any failure (a tracker problem must not reach the user's cell)."""
    try:
        return call()
    except Exception:
        logger.exception("nbtrack: %s failed", what)
        return None


@dataclass
class TrackedRun:
    """A run started in this kernel, the cell execution that started it, and its panel."""

    run: Run
    cell: tuple[str, int] | None  # (cell key, execution count)
    panel: Any = None
    handle: Any = None  # the DisplayHandle of the panel's output
    last_live: pb.LiveResult | None = field(default=None, repr=False)
    last_update: float = 0.0  # monotonic time of the panel's last update
    code: CodeLog | None = None  # the cells run while it is live, when code capture is on

    def update_panel(self, **state: Any) -> None:
        """Send a panel update, never sooner than MIN_UPDATE_GAP after the previous one."""
        wait = self.last_update + MIN_UPDATE_GAP - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.panel.set_state(**state)
        self.last_update = time.monotonic()


class KernelTracker:
    """Implements nbtrack.sdk.session.InitHook for an IPython kernel."""

    def __init__(self, shell: InteractiveShell, config: NBTrack) -> None:
        self.shell = shell
        self.config = config
        self.live_interval = config.live_interval if config.display == "widget" else 0.0
        self.runs: list[TrackedRun] = []  # every run started in this kernel, oldest first
        self._cell: tuple[str, int] | None = None
        self._cell_record: pb.CellRecord | None = None  # the cell running now
        self._cell_source = ""
        self._last_count = 0  # the number of the last cell seen
        self._depth = 0  # cells running now: 2 while %%nbtrack runs its body
        self.console: ConsoleCapture | None = None
        if config.capture_console:
            self.console = ConsoleCapture(self._console_line)
            self.console.install()
        self._spare: InternalProcess | None = None
        self._spare_lock = threading.Lock()
        if config.prewarm:
            self._start_spare()

    # -- InitHook ----------------------------------------------------------------------------

    def defaults(self) -> dict[str, Any]:
        names = ("project", "mode", "dir", "base_url")
        return {name: getattr(self.config, name) for name in names if getattr(self.config, name) is not None}

    def before_start(self) -> None:
        """Re-running a cell finishes the runs its previous execution left running."""
        if self._cell is None:
            return
        key, count = self._cell
        for tracked in self.runs:
            earlier = tracked.cell is not None and tracked.cell[0] == key and tracked.cell[1] != count
            if earlier and not tracked.run.finished:
                guarded(tracked.run.finish, f"finishing run {tracked.run.id} of a re-run cell")

    def take_process(self) -> InternalProcess | None:
        with self._spare_lock:
            spare, self._spare = self._spare, None
        if spare is not None and not spare.is_alive():
            spare.close_pipes()
            spare = None
        if self.config.prewarm:
            threading.Thread(target=self._start_spare, name="nbtrack-spare", daemon=True).start()
        return spare

    def started(self, run: Run) -> None:
        tracked = TrackedRun(run=run, cell=self._cell)
        self.runs.append(tracked)
        if self._cell_record is not None:  # the cell that started the run is its first
            run.notebook_link.cell(self._cell_record)
        if self.console is not None:  # finish() in a cell: its unfinished line is the run's too
            console = self.console
            run.on_finishing.append(lambda _run: guarded(console.flush, "the console capture"))
        save_code = run.save_code if run.save_code is not None else self.config.save_code
        if save_code:
            tracked.code = CodeLog(run.id, notebook_name(self.shell.user_ns))
            if self._cell is not None:
                tracked.code.add(self._cell[1], self._cell_source)
            run.on_finishing.append(lambda _run: guarded(lambda: _store_code(tracked), "saving the code"))
        run.on_finished.append(lambda _run: guarded(lambda: self._show_final(tracked), "the final snapshot"))
        run.on_process_gone.append(lambda _run: guarded(lambda: self._show_gone(tracked), "a panel update"))
        if self.config.display != "none":
            guarded(lambda: self._show(tracked), "displaying the run panel")

    # -- cell hooks: accept anything, raise nothing ------------------------------------------

    def pre_run_cell(self, *args: Any, **kwargs: Any) -> None:
        self._depth += 1
        if self._depth == 1:  # a cell run from inside a cell (%%nbtrack's body) is part of that cell
            guarded(lambda: self._note_cell(args[0] if args else kwargs.get("info")), "the pre_run_cell hook")

    def post_run_cell(self, *args: Any, **kwargs: Any) -> None:
        # Runs stay live across cells: the cell's unfinished console line is handed over. Runs
        # that ended stay listed (`%nbtrack` shows every run of the kernel).
        self._depth = max(0, self._depth - 1)
        if self._depth:
            return
        if not self.config.stats_between_cells:
            guarded(self._pause_stats, "pausing system metrics")
        if self.console is not None:
            guarded(self.console.flush, "the console capture")

    def _note_cell(self, info: Any) -> None:
        cell_id = getattr(info, "cell_id", None)
        raw = getattr(info, "raw_cell", "") or ""
        source_hash = hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:12]
        count = int(getattr(self.shell, "execution_count", 0) or 0)
        if getattr(info, "store_history", False):
            count -= 1  # IPython counts the cell before pre_run_cell: its In[n] is the one before
        elif count <= self._last_count:
            # A cell run without history (nbval, a tool) has no In[n] of its own: number it after
            # the last one, so that each cell execution still has its own number.
            count = self._last_count + 1
        self._last_count = max(self._last_count, count)
        self._cell = (cell_id or source_hash, count)  # the cell's identity, to tell a re-run
        self._cell_source = raw
        self._cell_record = pb.CellRecord(
            execution_count=count, cell_id=cell_id or "", source_hash=source_hash, timestamp=time.time()
        )
        for tracked in self.runs:
            if not tracked.run.finished:
                tracked.run.notebook_link.cell(self._cell_record)
                if tracked.code is not None:
                    tracked.code.add(count, raw)

    def _pause_stats(self) -> None:
        ended = pb.CellRecord(ended=True, timestamp=time.time())
        for run in self.live_runs():
            run.notebook_link.cell(ended)

    def _console_line(self, stream: str, line: str, timestamp: float) -> None:
        """A line the kernel printed: it goes to every live run of this kernel."""
        for run in self.live_runs():
            run.notebook_link.console(stream, line, timestamp)

    def code_of(self, run: Run) -> CodeLog:
        """What code capture stores (or would store) for run, so far."""
        tracked = next((t for t in self.runs if t.run is run), None)
        if tracked is not None and tracked.code is not None:
            return tracked.code
        return CodeLog(run.id, notebook_name(self.shell.user_ns))

    # -- panels ------------------------------------------------------------------------------

    def _show(self, tracked: TrackedRun) -> None:
        from IPython.display import display

        from nbtrack.extension.panel import RunPanel

        run = tracked.run
        name = run.name
        if self.config.deterministic and name == readable_name(run.id):  # made from the random id
            name = f"{run.project}-{len(self.runs)}"
        panel = RunPanel(
            name=name,
            run_id=run.id,
            project=run.project,
            entity=run.entity,
            url=run.url,
            deterministic=self.config.deterministic,
        )
        tracked.panel = panel
        # An alert shows at once (a live update comes only when rows or the state change).
        run.on_alert.append(
            lambda run, _alert: guarded(lambda: tracked.update_panel(alerts=run.alerts), "a panel update")
        )
        if self.config.display == "widget":
            tracked.handle = display(panel, display_id=True)  # type: ignore[no-untyped-call]
            # The results thread calls this; widget updates are comm messages, which ipykernel
            # routes by comm id, so they reach the panel whichever cell is running now.
            run.on_live = lambda live: guarded(lambda: self._apply_live(tracked, live), "a live panel update")
        else:
            tracked.handle = display(_static_bundle(panel), raw=True, display_id=True)  # type: ignore[no-untyped-call]

    def _apply_live(self, tracked: TrackedRun, live: pb.LiveResult) -> None:
        from nbtrack.extension.media_preview import media_preview
        from nbtrack.extension.panel import panel_details

        tracked.last_live = live
        offline = tracked.run.mode == "offline" and live.state == "running"
        latest = jsonutil.loads(live.latest_json) if live.latest_json else {}
        tracked.update_panel(
            state="offline" if offline else live.state,
            step=live.step,
            rows=live.rows_logged,
            runtime=live.runtime,
            metrics=latest,
            media=media_preview(tracked.run, latest),
            series={s.key: {"steps": list(s.steps), "values": list(s.values)} for s in live.series},
            pending={"rows": live.rows_pending, "bytes": live.bytes_pending},
            notices=tracked.run.notices[-5:],
            details=panel_details(live),
            alerts=tracked.run.alerts,
            artifacts=[
                {
                    "role": a.role,
                    "type": a.type,
                    "name": a.name,
                    "version": a.version,
                    "files": a.files,
                    "bytes": a.bytes,
                }
                for a in live.artifacts
            ],
            artifacts_total=live.artifacts_total,
        )

    def _show_gone(self, tracked: TrackedRun) -> None:
        """The internal process died: the panel says so (the run cannot reach the store now)."""
        if tracked.panel is not None:
            tracked.update_panel(state="crashed", notices=tracked.run.notices[-5:])

    def _show_final(self, tracked: TrackedRun) -> None:
        """At finish: the panel's final state, and a static snapshot saved notebooks keep."""
        from IPython.display import display

        panel, handle, run = tracked.panel, tracked.handle, tracked.run
        if panel is None or handle is None:
            return
        live = tracked.last_live
        summary = run.get_summary()
        tracked.update_panel(
            state=run.state,
            step=live.step if live is not None else None,
            rows=live.rows_logged if live is not None else None,
            metrics={k: v for k, v in summary.items() if not isinstance(v, dict)} or None,
            pending={"rows": 0, "bytes": 0},
            notices=run.notices[-5:],
            alerts=run.alerts,
        )
        if self.config.deterministic:
            # Test mode: a separate, final output. nbval ignores display updates, so an updated
            # display would compare its first state against the saved final one.
            display(_static_bundle(panel), raw=True)  # type: ignore[no-untyped-call]
        elif self.config.display == "widget":
            handle.update(panel)  # the bundle carries the final text/plain and text/html
        else:
            handle.update(_static_bundle(panel), raw=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def live_runs(self) -> list[Run]:
        return [t.run for t in self.runs if not t.run.finished]

    def finish_all(self, timeout: float = 30.0) -> None:
        """Finish every live run of this kernel, saying what it waits for."""
        live = self.live_runs()
        if not live:
            return
        pending = sum(_pending_rows(run) for run in live)
        if pending:
            print(f"nbtrack: waiting up to {timeout:g} s for {pending} records", file=sys.stderr)
        deadline = time.monotonic() + timeout
        for run in live:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # An unreachable server may keep an online run waiting: bounded by what is left.
            guarded(functools.partial(run.finish, timeout=left), f"finishing run {run.id}")

    def close(self) -> None:
        self.finish_all()
        if self.console is not None:
            self.console.uninstall()
            self.console = None
        with self._spare_lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            spare.kill()
            spare.close_pipes()

    def _start_spare(self) -> None:
        spare = guarded(lambda: InternalProcess(preload=True), "starting a warm internal process")
        with self._spare_lock:
            old, self._spare = self._spare, spare
        if old is not None:
            old.kill()
            old.close_pipes()


def _store_code(tracked: TrackedRun) -> None:
    """Save the run's code log as its file CODE_FILE (called as the run finishes)."""
    import tempfile
    from pathlib import Path

    if tracked.code is None:
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cells.py"
        path.write_text(tracked.code.render(), encoding="utf-8")
        tracked.run.save(path, name=CODE_FILE)


def _pending_rows(run: Run) -> int:
    return run.pending_rows()


def _static_bundle(panel: Any) -> dict[str, str]:
    return {"text/plain": panel.text_summary(), "text/html": panel.html_summary()}

"""The notebook's explorer: `nbtrack.show("project")` (and `%nbtrack show PROJECT`) shows a
project's runs table, `nbtrack.compare(a, b, ...)` a comparison of runs, each as a widget in the
notebook (no browser tab, no iframe), read from the local store or a tracking server through
`nbtrack.Api`.

The widget is an anywidget like the live panel (panel.py): its front end is
web/widget/explorer.js with the shared chart code (esm.py bundles them), its one synced trait the
view explorer_data.py makes, and its mime bundle carries static text/plain and text/html
snapshots (explorer_snapshot.py) for nbconvert, nbval and front ends without widgets.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import traitlets

from nbtrack.errors import NbtrackError, UsageError
from nbtrack.extension import explorer_data, explorer_snapshot
from nbtrack.extension.config import deterministic_from_env
from nbtrack.extension.esm import explorer_esm
from nbtrack.extension.snapshot_widget import SnapshotWidget

if TYPE_CHECKING:
    from nbtrack.api import Api, StoredRun
    from nbtrack.sdk.run import Run

__all__ = ["ExplorerWidget", "compare", "compare_widget", "runs_widget", "show"]

SETTLE_SECONDS = 5.0  # at most this long for this process's live runs to store what they logged


class ExplorerWidget(SnapshotWidget):
    """A runs table or a comparison, as explorer_data.py made it; static once made."""

    view = traitlets.Dict().tag(sync=True)

    @traitlets.default("_esm")
    def _bundled_esm(self) -> str:
        return explorer_esm()

    def text_summary(self) -> str:
        return explorer_snapshot.text_snapshot(self.view)

    def html_summary(self) -> str:
        return explorer_snapshot.html_snapshot(self.view)


@contextmanager
def _api(dir: str | os.PathLike[str] | None, base_url: str | None, api_key: str | None) -> Iterator[Api]:
    from nbtrack.api import Api

    api = Api(dir=dir, base_url=base_url, api_key=api_key)
    try:
        yield api
    finally:
        api.close()


def runs_widget(
    project: str,
    *,
    dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
) -> ExplorerWidget:
    """The runs table of "project" (or "entity/project") as a widget; UsageError names an unknown project."""
    if not isinstance(project, str):  # checked first: no store need be found to say so
        raise UsageError(f"show() takes a project name ('project' or 'entity/project'), not {project!r:.60}")
    project_name = project.rsplit("/", 1)[-1]
    _wait_for_rows_of_live_runs(lambda run: run.project == project_name)
    with _api(dir, base_url, api_key) as api:
        view = explorer_data.runs_table(api, project, stable=deterministic_from_env())
    return ExplorerWidget(view=view)


def compare_widget(
    *runs: str | StoredRun,
    dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
) -> ExplorerWidget:
    """The comparison of runs (ids, "project/run_id" paths or StoredRuns) as a widget; UsageError
    names a run that is not there."""
    from nbtrack.api import StoredRun

    ids = {
        ref.rsplit("/", 1)[-1] if isinstance(ref, str) else ref.id
        for ref in runs
        if isinstance(ref, str | StoredRun)
    }
    live = _wait_for_rows_of_live_runs(lambda run: run.id in ids)
    if runs and all(isinstance(run, StoredRun) for run in runs):  # read through their own Api
        for run in runs:
            if isinstance(run, StoredRun) and run.id in live:
                run.refresh()  # its summary as stored now
        return ExplorerWidget(view=explorer_data.comparison(explorer_data.resolve_runs(None, runs)))
    with _api(dir, base_url, api_key) as api:
        found = explorer_data.resolve_runs(api, runs)
        return ExplorerWidget(view=explorer_data.comparison(found))


def _wait_for_rows_of_live_runs(chosen: Callable[[Run], bool]) -> set[str]:
    """The runs of this process still logging that a view shows: wait until the store (or server)
    holds the rows they logged so far, at most SETTLE_SECONDS in all. The internal process stores
    rows in batches, so a view read right after log() would otherwise miss the cell's last rows."""
    from nbtrack.sdk.run import live_runs

    deadline = time.monotonic() + SETTLE_SECONDS
    waited = set()
    for run in live_runs():
        if not chosen(run):
            continue
        waited.add(run.id)
        try:
            logged = run.status().rows_logged  # asked after every log() call: the internal process has them
            while run.status().rows_stored < logged and time.monotonic() < deadline:
                time.sleep(0.02)
        except NbtrackError:
            continue  # its internal process is gone: the view shows what the store has
    return waited


def show(
    project: str,
    *,
    dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
) -> None:
    """Show the runs of "project" (or "entity/project") under the cell: from the store under dir
    (default $NBTRACK_DIR, else ./.nbtrack) or the tracking server at base_url (with api_key)."""
    _display(runs_widget(project, dir=dir, base_url=base_url, api_key=api_key))


def compare(
    *runs: str | StoredRun,
    dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
) -> None:
    """Show runs side by side under the cell: config and summary (differences marked) and a chart
    per metric they share, a line per run. Runs are ids, "project/run_id" paths or StoredRuns
    (from nbtrack.Api); dir, base_url and api_key say where to read them, as for show()."""
    _display(compare_widget(*runs, dir=dir, base_url=base_url, api_key=api_key))


def _display(widget: ExplorerWidget) -> None:
    """Under the cell in IPython; its text snapshot elsewhere (a script, a terminal)."""
    from IPython import get_ipython
    from IPython.display import display

    if get_ipython() is not None:
        display(widget)  # type: ignore[no-untyped-call]
    else:
        print(widget.text_summary())

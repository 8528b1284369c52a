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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import traitlets

from nbtrack.extension import explorer_data, explorer_snapshot
from nbtrack.extension.config import deterministic_from_env
from nbtrack.extension.esm import explorer_esm
from nbtrack.extension.snapshot_widget import SnapshotWidget

if TYPE_CHECKING:
    from nbtrack.api import Api, StoredRun

__all__ = ["ExplorerWidget", "compare", "compare_widget", "runs_widget", "show"]


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

    if runs and all(isinstance(run, StoredRun) for run in runs):  # read through their own Api
        return ExplorerWidget(view=explorer_data.comparison(explorer_data.resolve_runs(None, runs)))
    with _api(dir, base_url, api_key) as api:
        found = explorer_data.resolve_runs(api, runs)
        return ExplorerWidget(view=explorer_data.comparison(found))


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

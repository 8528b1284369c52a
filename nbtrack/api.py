"""The read API: finished and running runs, their config, summary and history, from Python.

    api = nbtrack.Api()                      # the local store under ./.nbtrack (or NBTRACK_DIR)
    api = nbtrack.Api(base_url="http://127.0.0.1:8080")   # or a tracking server, the same way
    for run in api.runs("mnist"):
        print(run.id, run.state, run.summary.get("loss"))
    df = api.run("mnist/abc123").history(keys=["loss"], pandas=True)
    run = api.run("mnist/abc123"); run.name = "baseline"; run.tags.append("best"); run.update()
    api.run("mnist/old123").delete()         # every row, file and log of it (force=True: running)

Paths are "project" or "entity/project" for a project, "project/run_id" or
"entity/project/run_id" for a run (also "entity/project/runs/run_id", as a run's URL spells it).
`api.artifact("project/name:v1")` reads a logged artifact version (artifacts/stored.py);
`run.logged_artifacts()` / `run.used_artifacts()` a run's, and `art.logged_by()` / `art.used_by()`
lead back to runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

from nbtrack import jsonutil
from nbtrack.errors import NbtrackError, StoreError, UsageError
from nbtrack.run_manage import LocalRunEditor
from nbtrack.sdk.values import check_file_name
from nbtrack.settings import check_base_url, crashed_after, resolve_root
from nbtrack.store import DB_FILENAME, AlertRow, ChartRequest, ProjectRow, RunRow, Store
from nbtrack.store.archive import FolderArchive
from nbtrack.store.artifact_rows import ArtifactsError
from nbtrack.store.schema import pick_keys
from nbtrack.vocabulary import CELLS_KEY, CLIENT_CONFIG_KEY

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]  # pandas-stubs is optional

    from nbtrack.artifacts.stored import ArtifactSource, StoredArtifact
    from nbtrack.online.reader import ServerReader

__all__ = ["Api", "RunNotFoundError", "StoredRun"]

# The chart of one run, as the web UI reads it (Run.chart in the server's schema).
_CHART = """query Chart($project: String!, $entity: String, $run: String!, $keys: [String!],
    $points: Int) {
  project(name: $project, entityName: $entity) {
    run(name: $run) { chart(keys: $keys, points: $points) } } }"""


class RunNotFoundError(NbtrackError, LookupError):
    """No stored run matches the path given to `Api.run`.

    `missing` says which run was looked for where, and `project` its project path, so that a caller
    other than Python code (the CLI) can say how its own users list the runs there."""

    def __init__(self, message: str, *, missing: str | None = None, project: str | None = None) -> None:
        super().__init__(message)
        self.missing = missing or message
        self.project = project


class RunSource(Protocol):
    """Where runs are read from: the embedded store (`Store`) or a server (`ServerReader`)."""

    def list_projects(self, entity: str | None = None) -> list[ProjectRow]: ...
    def list_runs(self, project: str, entity: str | None = None) -> list[RunRow]: ...
    def get_run(self, entity: str | None, project: str, run_id: str) -> RunRow | None: ...
    def read_history(
        self, entity: str, project: str, run_id: str, keys: Sequence[str] | None = None
    ) -> list[dict[str, Any]]: ...
    def read_output(
        self, entity: str, project: str, run_id: str, offset: int = 0, limit: int | None = None
    ) -> list[str]: ...
    def read_alerts(self, entity: str, project: str, run_id: str) -> list[AlertRow]: ...
    def close(self) -> None: ...


class RunEditor(Protocol):
    """Where runs are edited and deleted: a folder (`LocalRunEditor`) or a server (`ServerRunEditor`)."""

    def edit_run(
        self,
        entity: str,
        project: str,
        run_id: str,
        *,
        name: str | None,
        notes: str | None,
        tags: Sequence[str] | None,
    ) -> RunRow: ...
    def delete_run(self, entity: str, project: str, run_id: str, *, force: bool) -> None: ...


class Api:
    """Read access to the runs of an nbtrack folder or of a tracking server."""

    def __init__(
        self,
        dir: str | os.PathLike[str] | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
    ) -> None:
        """Read the server at base_url (with api_key, default $NBTRACK_API_KEY), else the store under
        dir (default: $NBTRACK_DIR, else ./.nbtrack); UsageError if that folder has no runs."""
        self._source: RunSource
        self._editor: RunEditor
        self._reader: ServerReader | None = None
        self._artifacts: ArtifactSource | None = None  # made when first asked (artifact_source)
        self.dir: Path | None = None  # the folder read, or None when reading a server
        self.base_url: str | None = None
        if base_url is not None:
            from nbtrack.online.reader import ServerReader

            try:
                base_url = check_base_url(base_url)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            self.base_url = base_url
            from nbtrack.online.run_edits import ServerRunEditor

            self._source = self._reader = ServerReader(base_url, api_key or os.environ.get("NBTRACK_API_KEY"))
            self._editor = ServerRunEditor(self._reader)
            return
        root = resolve_root(dir)
        # Check before opening: opening the store would create an empty database as a side effect.
        if not (root / DB_FILENAME).is_file():
            raise UsageError(
                f"no runs were found under {root.resolve()}: run `nbtrack demo` to make some, "
                "or pass dir= with the folder that holds your runs"
            )
        self.dir = root
        store = self._source = Store.for_reading(root)  # read-only where it cannot be written
        # A server run on this folder (--dir) keeps compacted histories in its files folder.
        store.attach_archive(FolderArchive(root / "files"))
        _mark_silent_runs(store)
        self._editor = LocalRunEditor(store, root)  # its edits fail where it cannot be written

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def projects(self, entity: str | None = None) -> list[ProjectRow]:
        """Every project (of one entity, or all), most recently active first."""
        return self._source.list_projects(entity)

    def runs(self, path: str) -> list[StoredRun]:
        """Runs of "project" or "entity/project", newest first."""
        parts = _split(path, "a project path ('project' or 'entity/project')", (1, 2))
        entity = parts[0] if len(parts) == 2 else None
        return [self._view(row) for row in self._source.list_runs(parts[-1], entity)]

    def run(self, path: str) -> StoredRun:
        """The run at "project/run_id" or "entity/project/run_id"; RunNotFoundError if there is none."""
        parts = _split(path, "a run path ('project/run_id' or 'entity/project/run_id')", (2, 3, 4))
        if len(parts) == 4:
            if parts[2] != "runs":
                raise ValueError(f"{path!r} is not a run path; expected 'entity/project/runs/run_id'")
            del parts[2]
        entity = parts[0] if len(parts) == 3 else None
        project, run_id = parts[-2:]
        row = self._source.get_run(entity, project, run_id)
        if row is None:
            where = f"{entity}/{project}" if entity is not None else project
            missing = f"no run {run_id!r} in project {where!r} {self._where()}"
            raise RunNotFoundError(
                f"{missing}; Api().runs({where!r}) lists the runs there", missing=missing, project=where
            )
        return self._view(row)

    def artifact(self, path: str) -> StoredArtifact:
        """The committed artifact version at "project/name:ref" or "entity/project/name:ref" (ref:
        "v3", "latest" or an alias; none: latest), read from the local store or the server. The
        entity may be left out when one entity has a project so named."""
        parts = _split(path, "an artifact path ('project/name:v1' or 'entity/project/name:v1')", (2, 3))
        name, _, ref = parts[-1].partition(":")
        project = parts[-2]
        if len(parts) == 3:
            entity = parts[0]
        else:
            owners = sorted({row.entity for row in self._source.list_projects() if row.name == project})
            if len(owners) != 1:
                raise ValueError(
                    f"{path!r}: project {project!r} is "
                    + (f"in several entities ({', '.join(owners)})" if owners else f"not {self._where()}")
                    + "; give the path as 'entity/project/name:version'"
                )
            entity = owners[0]
        found = self.find_artifact(entity, project, name, ref or "latest")
        if found is None:
            raise ArtifactsError(
                f"no artifact {name}:{ref or 'latest'} in {entity}/{project} {self._where()}"
            )
        return found

    def find_artifact(self, entity: str, project: str, name: str, ref: str) -> StoredArtifact | None:
        """The committed version of entity/project/name that ref ("v3", "latest", an alias) names,
        or None."""
        from nbtrack.artifacts.stored import StoredArtifact

        source = self.artifact_source()
        if self._reader is not None:
            from nbtrack.online.artifact_reads import ServerArtifacts

            assert isinstance(source, ServerArtifacts)
            row = source.find(entity, project, name, ref)
        else:
            assert isinstance(self._source, Store)
            row = self._source.find_artifact_version(entity, project, name, ref)
        return None if row is None else StoredArtifact(row, self)

    def artifact_source(self) -> ArtifactSource:
        """Where this Api's artifacts are read (made once): the store and its files folder, or
        the server."""
        if self._artifacts is None:
            if self._reader is not None:
                from nbtrack.online.artifact_reads import ServerArtifacts

                self._artifacts = ServerArtifacts(self._reader)
            else:
                from nbtrack.artifacts.stored import LocalArtifacts

                assert isinstance(self._source, Store) and self.dir is not None
                self._artifacts = LocalArtifacts(self._source, self.dir / "files")
        return self._artifacts

    def run_view(self, row: RunRow) -> StoredRun:
        """The StoredRun of a row this Api read (an artifact's run)."""
        return self._view(row)

    def _view(self, row: RunRow) -> StoredRun:
        if self._reader is not None:
            url = self._reader.run_url(row)
            return StoredRun(row, self._source, url, reader=self._reader, editor=self._editor, api=self)
        assert self.dir is not None
        return StoredRun(
            row, self._source, files_root=self.dir / "files", editor=self._editor, api=self
        )  # see backend.run_files_dir

    def _where(self) -> str:
        return f"on {self.base_url}" if self.dir is None else f"under {self.dir.resolve()}"


class StoredRun:
    """A view of one stored run, as it was when fetched (refresh() fetches again).

    Its name, notes and tags may be set (`run.name = "x"`, `run.tags.append("y")`) and are stored
    by `update()`; `delete()` deletes the run.
    """

    def __init__(
        self,
        row: RunRow,
        source: RunSource,
        url: str | None = None,
        *,
        files_root: Path | None = None,
        reader: ServerReader | None = None,
        editor: RunEditor | None = None,
        api: Api | None = None,
    ) -> None:
        self._row = row
        self._api = api  # what read it: its artifacts are read through it too
        self._editor = editor
        self._edits: dict[str, Any] = {}  # name, notes, tags set on this view, until update()
        self._source = source
        self._url = url
        self._files_root = files_root  # <root>/files of a local folder
        self._reader = reader

    def file(self, name: str) -> bytes:
        """The bytes of one of the run's files: a `run.save()` name, or the "path" of a logged
        image or table as its history row holds it. FileNotFoundError if the run has no such file."""
        name = check_file_name(name)
        if self._reader is not None:
            from nbtrack.online.retry import Rejected

            try:
                return self._reader.read_file(self.entity, self.project, self.id, name)
            except Rejected as exc:
                if exc.status == 404:
                    raise FileNotFoundError(f"run {self.path} has no file {name!r}") from None
                raise
        assert self._files_root is not None
        path = self._files_root / self.entity / self.project / self.id / name
        if not path.is_file():
            raise FileNotFoundError(f"run {self.path} has no file {name!r} (looked for {path})")
        return path.read_bytes()

    def __repr__(self) -> str:
        return f"<StoredRun {self.path} ({self.state})>"

    @property
    def row(self) -> RunRow:
        """The stored row behind this view."""
        return self._row

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.id}"

    @property
    def id(self) -> str:
        return self._row.run_id

    @property
    def name(self) -> str:
        if "name" in self._edits:
            return str(self._edits["name"])
        return self._row.display_name or self._row.run_id

    @name.setter
    def name(self, name: str) -> None:
        self._edits["name"] = name

    @property
    def entity(self) -> str:
        return self._row.entity

    @property
    def project(self) -> str:
        return self._row.project

    @property
    def state(self) -> str:
        return self._row.state

    @property
    def config(self) -> dict[str, Any]:
        """The run's config; a wandb client's own entry (its settings, not the user's) left out."""
        return {key: value for key, value in self._row.config.items() if key != CLIENT_CONFIG_KEY}

    @property
    def summary(self) -> dict[str, Any]:
        """The run's summary: the last (or min/max/...) value of each metric, and what was set."""
        return {key: value for key, value in self._row.summary.items() if key != CELLS_KEY}

    @property
    def cells(self) -> dict[int, dict[str, str]]:
        """A notebook's run: for each cell (its execution count, as rows' and console lines' _cell
        say it) its "hash" (of its source) and "id" (when the front end sent one)."""
        return {int(count): dict(cell) for count, cell in self._row.summary.get(CELLS_KEY, {}).items()}

    @property
    def tags(self) -> list[str]:
        """The run's tags: a list update() stores as it is then (append to it, or set a new one)."""
        if "tags" not in self._edits:
            self._edits["tags"] = list(self._row.tags)
        tags: list[str] = self._edits["tags"]
        return tags

    @tags.setter
    def tags(self, tags: list[str]) -> None:
        self._edits["tags"] = tags

    @property
    def notes(self) -> str | None:
        notes: str | None = self._edits.get("notes", self._row.notes)
        return notes

    @notes.setter
    def notes(self, notes: str) -> None:
        self._edits["notes"] = notes

    def update(self) -> None:
        """Store the name, notes and tags set on this view; the rest of the run stays as it is.
        UsageError names a value that cannot be stored, RunNotFoundError a run deleted meanwhile."""
        from nbtrack.run_manage import check_edits

        if not self._edits:
            return
        name, notes, tags = check_edits(
            self._edits.get("name"), self._edits.get("notes"), self._edits.get("tags")
        )
        if tags == self._row.tags and "tags" in self._edits:
            tags = None  # read, not changed: the stored tags stay (a concurrent edit of them too)
        if name is None and notes is None and tags is None:
            self._edits.clear()
            return
        try:
            row = self._editing().edit_run(
                self.entity, self.project, self.id, name=name, notes=notes, tags=tags
            )
        except LookupError as exc:
            raise RunNotFoundError(str(exc)) from None
        self._row = row
        self._edits.clear()

    def delete(self, force: bool = False) -> None:
        """Delete the run: its history, console lines, files, rollup, alerts, and in a folder its
        transaction logs. A run still running is refused unless force (its process gone, say); in
        a folder, one whose process is alive is refused even then. Nothing of it can be read after."""
        try:
            self._editing().delete_run(self.entity, self.project, self.id, force=force)
        except LookupError as exc:
            raise RunNotFoundError(str(exc)) from None

    def logged_artifacts(self) -> list[StoredArtifact]:
        """The artifact versions this run logged and the store or server has, oldest first (W&B's
        `run.logged_artifacts()`)."""
        return self._artifacts(logged=True)

    def used_artifacts(self) -> list[StoredArtifact]:
        """The artifact versions this run used, in the order it first did (W&B's
        `run.used_artifacts()`)."""
        return self._artifacts(logged=False)

    def _artifacts(self, logged: bool) -> list[StoredArtifact]:
        from nbtrack.artifacts.stored import StoredArtifact

        api = self._api
        if api is None:
            raise UsageError("this run was not read through nbtrack.Api: its artifacts cannot be read here")
        source = api.artifact_source()
        rows = source.fetching(lambda: source.run_artifacts(self._row, logged))
        return [StoredArtifact(row, api) for row in rows]

    def _editing(self) -> RunEditor:
        if self._editor is None:
            raise UsageError("this run was not read through nbtrack.Api: it cannot be edited from here")
        return self._editor

    @property
    def group(self) -> str | None:
        return self._row.group

    @property
    def job_type(self) -> str | None:
        return self._row.job_type

    @property
    def created_at(self) -> float:
        return self._row.created_at

    @property
    def runtime(self) -> float:
        return self._row.runtime

    @property
    def exit_code(self) -> int | None:
        return self._row.exit_code

    @property
    def url(self) -> str | None:
        """The run's page on a tracking server; None while runs are read from a local folder."""
        return self._url

    def refresh(self) -> None:
        """Fetch the run again, e.g. to follow one that is still running (edits not yet stored are
        dropped)."""
        row = self._source.get_run(self.entity, self.project, self.id)
        if row is None:
            raise RunNotFoundError(f"run {self.path!r} is no longer there")
        self._row = row
        self._edits.clear()

    @overload
    def history(
        self, keys: Sequence[str] | None = None, pandas: Literal[False] = False, attempt: int | None = None
    ) -> list[dict[str, Any]]: ...
    @overload
    def history(
        self, keys: Sequence[str] | None = None, *, pandas: Literal[True], attempt: int | None = None
    ) -> pd.DataFrame: ...
    @overload
    def history(
        self, keys: Sequence[str] | None = None, pandas: bool = False, attempt: int | None = None
    ) -> list[dict[str, Any]] | pd.DataFrame: ...
    def history(
        self, keys: Sequence[str] | None = None, pandas: bool = False, attempt: int | None = None
    ) -> list[dict[str, Any]] | pd.DataFrame:
        """Every logged row with its _step; with keys, only rows holding one of them, cut to those keys.

        In a notebook rows also carry _cell (the execution count of the cell that logged them) and,
        from the run's second attempt on (a re-run cell logging steps again), _attempt; attempt=N
        keeps the rows of attempt N only (0: the first).
        """
        if isinstance(keys, str):
            keys = [keys]  # a lone key name would otherwise be read as a sequence of letters
        if attempt is None:
            rows = self._source.read_history(self.entity, self.project, self.id, keys=keys)
        else:
            rows = self._source.read_history(self.entity, self.project, self.id)
            rows = [row for row in rows if row.get("_attempt", 0) == attempt]
            if keys is not None:
                rows = pick_keys(rows, keys)
        if not pandas:
            return rows
        try:
            import pandas as pandas_module
        except ImportError as exc:
            raise ImportError("StoredRun.history(pandas=True) needs pandas: pip install pandas") from exc
        columns = None if keys is None else ["_step", *keys]
        return pandas_module.DataFrame.from_records(rows, columns=columns)

    def chart(self, keys: Sequence[str] | None = None, points: int = 500) -> dict[str, list[list[float]]]:
        """The run's metrics (or keys) downsampled for drawing, as the web UI gets them: per key at
        most `points` [step, min, max] points (every value, min = max, where it has fewer; a
        million-row run reads its rollup, and keeps its spikes). Keys without a number are left out."""
        if isinstance(keys, str):
            keys = [keys]
        wanted = None if keys is None else tuple(dict.fromkeys(keys))
        if self._reader is not None:
            data = self._reader.graphql(
                _CHART,
                project=self.project,
                entity=self.entity,
                run=self.id,
                keys=None if wanted is None else list(wanted),
                points=points,
            )
            run = (data.get("project") or {}).get("run")
            if run is None:
                raise RunNotFoundError(f"run {self.path!r} is no longer there")
            body = run["chart"]
            series: dict[str, list[list[float]]] = (jsonutil.loads(body) if isinstance(body, str) else body)[
                "series"
            ]
            return series
        assert isinstance(self._source, Store)
        chart = self._source.chart(
            self.entity, self.project, self.id, ChartRequest(wanted, "_step", None, None, points)
        )
        if chart is None:
            raise RunNotFoundError(f"run {self.path!r} is no longer there")
        return chart.series

    @property
    def alerts(self) -> list[AlertRow]:
        """The run's alerts (`run.alert()`, a wandb client's too), oldest first: each with its
        title, text, level ("INFO", "WARN" or "ERROR") and created_at (unix seconds). Read when asked."""
        return self._source.read_alerts(self.entity, self.project, self.id)

    def output(self) -> list[dict[str, Any]]:
        """The run's console lines, in order: {"line", "stream" ("stdout" or "stderr"), "_timestamp",
        "_cell" (in a notebook: the cell that printed it)} (console_format.py)."""
        from nbtrack.console_format import read_console_line

        lines = self._source.read_output(self.entity, self.project, self.id)
        return [read_console_line(text) for text in lines]


def _split(path: str, what: str, counts: tuple[int, ...]) -> list[str]:
    """The non-empty '/'-separated parts of path; ValueError if their number is not in counts."""
    parts = path.strip().split("/")
    if len(parts) not in counts or not all(part.strip() for part in parts):
        raise ValueError(f"{path!r} is not {what}")
    return parts


def _mark_silent_runs(store: Store) -> None:
    """A local store has no server to mark its silent runs crashed: its readers do, so a run
    killed with its internal process does not read `running` forever (store/liveness.py)."""
    after = crashed_after()
    if after <= 0 or store.read_only:
        return
    # A store busy or locked for now: reading it still works, and the next reader marks them.
    with contextlib.suppress(StoreError):
        store.mark_silent_runs_crashed(after)

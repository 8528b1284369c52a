"""`Artifact.wait()`: the version a logged artifact became, as W&B's `run.log_artifact(art)`,
`art.wait()`, then `art.version` ("v3").

log_artifact() hands the artifact a LoggedVersion naming its run and its key
(run_artifact_list.logged_key). wait() asks the run's internal process which version that key
became (DeliveryProgress.artifact_versions, filled by the sender once the store or server has it)
until it has one, its delivery was given up, or the timeout passes: every way out says where the
artifact is. A finished run, or one whose internal process is gone for good, has no process left
to ask, so the store or server is read (the collection's version with the artifact's digest):
answered at once either way. An offline run's
artifacts are stored by `nbtrack sync` only, so wait() says so at once instead of waiting.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from nbtrack.errors import InternalProcessError, UsageError
from nbtrack.store.artifact_rows import ArtifactsError

if TYPE_CHECKING:
    from nbtrack.sdk.run import Run

__all__ = ["WAIT_SECONDS", "LoggedVersion"]

WAIT_SECONDS = 300.0  # how long wait() waits when given no timeout (every wait is bounded)
_FIRST_PAUSE, _LONGEST_PAUSE = 0.02, 0.5  # between questions: quick for a local store at first


class LoggedVersion:
    """One log_artifact() call's artifact: which run logged it, and the version once known."""

    def __init__(self, run: Run, name: str, digest: str, key: str) -> None:
        self._run = run
        self._name = name
        self._digest = digest
        self._key = key
        self.version: str | None = None  # "v3", once wait() learned it

    def wait(self, timeout: float | None) -> str:
        """The version; ArtifactsError saying where the artifact is if it cannot be had in time."""
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0
        ):
            raise TypeError(f"wait(): timeout must be a number of seconds >= 0, not {timeout!r}")
        if self.version is not None:
            return self.version
        run = self._run
        what = f"artifact {self._name!r} (logged by run {run.id})"
        if run.mode == "disabled":
            raise UsageError(f"wait(): {what}: a disabled run stores no artifacts")
        if run.mode == "offline":
            raise ArtifactsError(
                f"wait(): {what}: an offline run's artifacts are stored by `{run._sync_command()}`, "
                "not while it runs; nbtrack.Api().artifact(...) reads the version once it is synced"
            )
        limit = WAIT_SECONDS if timeout is None else float(timeout)
        deadline = time.monotonic() + limit
        pause = _FIRST_PAUSE
        while True:
            if run.finished:
                return self._read_back(what)
            try:
                answer = run._artifact_version(self._key, max(0.1, deadline - time.monotonic()))
            except InternalProcessError as exc:
                if run.finished or run._connection_lost() is not None:
                    return self._read_back(what)  # no process to ask: its store may have it
                if time.monotonic() >= deadline:
                    raise ArtifactsError(
                        f"wait(): {what} is not stored yet: {exc}; the run's transaction log "
                        f"{run._settings.log_path} keeps it: `{run._sync_command()}` delivers it again"
                    ) from None
                continue  # a replaced internal process: the next one recovers the log and answers
            if answer.version:
                self.version = answer.version
                return self.version
            if answer.failed:
                raise ArtifactsError(
                    f"wait(): {what} was not stored: {answer.failed}; the run's transaction log "
                    f"{run._settings.log_path} keeps it: `{run._sync_command()}` delivers it again"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ArtifactsError(
                    f"wait(): {what} is not stored yet after {limit:g} s (wait(timeout=...) waits "
                    f"longer); the run's internal process goes on delivering it, and its transaction "
                    f"log {run._settings.log_path} keeps it"
                )
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, _LONGEST_PAUSE)

    def _read_back(self, what: str) -> str:
        """The version of the artifact of a finished run (or one whose internal process is gone for
        good), from its store or server."""
        run = self._run
        try:
            with run._reading_api() as api:
                found = api.find_artifact(run.entity, run.project, self._name, "latest")
                versions = [] if found is None else found.versions()
        except (UsageError, ArtifactsError) as exc:
            raise ArtifactsError(f"wait(): {what}: its version could not be read back: {exc}") from None
        for version in versions:
            if version.digest == self._digest:
                self.version = version.version
                return self.version
        why = f"run {run.id} finished without storing it" if run.finished else run._connection_lost()
        raise ArtifactsError(
            f"wait(): {what} is not stored: {why}; its transaction log {run._settings.log_path} "
            f"keeps it: `{run._sync_command()}` delivers it again"
        )

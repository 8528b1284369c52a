"""The server's "SilentRuns" thread: marks crashed every `running` run nobody heard from for
`--crashed-after` seconds (store/liveness.py says why and how that stays right with replicas).

A live run is heard from at least every RUN_ALIVE_SECONDS: nbtrack's sender and wandb-core both
post an empty file-stream request when they have nothing else to send. So a run silent for
several of those intervals lost its writer (killed with every process it had, its machine gone),
and W&B users expect it to read `crashed` rather than `running` forever. Should its writer speak
again, the run goes back to `running`.
"""

from __future__ import annotations

import logging

from nbtrack.errors import StoreError
from nbtrack.store import Store
from nbtrack.worker import Until, Worker

__all__ = ["SilentRuns", "check_period"]

logger = logging.getLogger("nbtrack.server")

MAX_CHECK_SECONDS = 30.0  # a silent run is marked at most this long after its time is up


def check_period(crashed_after: float) -> float:
    """How often to look: a tenth of the window, within [0.1, MAX_CHECK_SECONDS] seconds."""
    return min(MAX_CHECK_SECONDS, max(0.1, crashed_after / 10))


class SilentRuns(Worker[None]):
    """Looks for silent runs every check_period(crashed_after) seconds until stop()."""

    def __init__(self, store: Store, crashed_after: float) -> None:
        self._store = store
        self._crashed_after = crashed_after
        self.idle_seconds = check_period(crashed_after)
        self._failing = False
        super().__init__("SilentRuns", Until(), self._give_up)

    def handle(self, item: None) -> None:
        raise AssertionError("SilentRuns is handed nothing")

    def idle(self) -> None:
        try:
            marked = self._store.mark_silent_runs_crashed(self._crashed_after)
        except StoreError as exc:  # the database is away for now: look again next time
            if not self._failing:
                logger.warning("nbtrack server: could not look for silent runs: %s", exc)
            self._failing = True
            return
        self._failing = False
        for entity, project, run_id in marked:
            logger.warning(
                "nbtrack server: run %s/%s/%s marked crashed: nothing heard from it for %g s",
                entity,
                project,
                run_id,
                self._crashed_after,
            )

    @staticmethod
    def _give_up(thread: str, exc: BaseException) -> None:
        logger.error("nbtrack server: silent runs are no longer marked crashed (%s failed: %s)", thread, exc)

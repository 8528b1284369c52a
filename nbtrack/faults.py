"""TEST-ONLY fault injection: make one thread raise, to prove that a stage of the internal process
that dies takes the process down and the run recovers from its log, and that a thread of the
user side that dies is recorded and wakes its waiters without ending the user's process.

    NBTRACK_FAULT_INJECT=<stage>-raise-after:<N>[@<marker file>]

<stage> is a thread's name in lower case: handler, writer, sender (and filestream, online) in the
internal process; nbtrack-outbox (its items are its drains), nbtrack-pipe, nbtrack-results,
nbtrack-media in the user process (every `Worker` reads the plan). It raises `InjectedFault`
after handling N items. With a marker file, only the first process that creates the file (it
must not exist) raises, so the restarted process runs clean. This is the one place that reads
the variable; unset (always, outside tests) it costs one `is None` check per item.
"""

from __future__ import annotations

import os

__all__ = ["ENV", "Fault", "InjectedFault", "planned"]

ENV = "NBTRACK_FAULT_INJECT"


class InjectedFault(RuntimeError):
    """Raised on purpose by a test's fault plan (never in a real run)."""


class Fault:
    """Counts a stage's items and raises after the planned number."""

    def __init__(self, stage: str, after: int, marker: str | None) -> None:
        self.stage, self._left, self._marker = stage, after, marker

    def tick(self) -> None:
        self._left -= 1
        if self._left > 0:
            return
        self._left = 1 << 62  # once per process
        if self._marker is not None:
            try:
                os.close(os.open(self._marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return  # an earlier process took this fault
        raise InjectedFault(f"test-only fault injected into the {self.stage} stage ({ENV})")


def planned(stage: str) -> Fault | None:
    """The fault planned for stage by NBTRACK_FAULT_INJECT, if any."""
    spec = os.environ.get(ENV)
    if not spec:
        return None
    plan, _, marker = spec.partition("@")
    name, _, count = plan.partition("-raise-after:")
    if name != stage or not count.isdigit():
        return None
    return Fault(stage, int(count), marker or None)

"""The sender's backend calls, tried again while their failure may pass.

A call that fails for a reason that may pass (a locked or full database, a lost connection, a
full disk: `is_transient`) is retried with capped exponential backoff and jitter (`RETRY`) until
it works or the run is aborted; meanwhile `DeliveryProgress.retrying_store` is true, and the user
hears one sentence when it starts and one when it is over (the traceback goes to the DEBUG log
only). Any other failure is said once and that call is dropped; the sender counts the rows it
carried.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from typing import ParamSpec

from nbtrack.internal.progress import DeliveryProgress
from nbtrack.internal.trouble import SPACE, Trouble, is_out_of_space, short_reason
from nbtrack.internal.whereabouts import Whereabouts
from nbtrack.online.retry import RetryPolicy, Transient

__all__ = ["RETRY", "Retrier", "is_transient"]

logger = logging.getLogger("nbtrack")

P = ParamSpec("P")

RETRY = RetryPolicy(base=0.25, factor=2.0, cap=4.0, jitter=0.5)  # a store back is found within seconds
_TRANSIENT_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EIO,
    errno.EAGAIN,
    errno.EBUSY,
    errno.ENOMEM,
    errno.ETIMEDOUT,
}


def is_transient(exc: BaseException) -> bool:
    """Worth trying again: the database is locked, full or unreachable, a disk is full, a server is
    down. Not: a refusal, a bad value, a missing file, a bug."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, Transient | sqlite3.OperationalError):
            return True
        if isinstance(seen, OSError) and seen.errno in _TRANSIENT_ERRNOS:
            return True
        sa = sys.modules.get("sqlalchemy.exc")  # imported by the store, if there is one
        if sa is not None and isinstance(seen, sa.OperationalError | sa.TimeoutError | sa.DisconnectionError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Retrier:
    """Runs backend calls until they work, or says once why one was dropped.

    aborted: set when the run is aborted (a retry in progress gives up at once); places: where
    the run goes and where its rows wait, as the notices name them.
    """

    def __init__(
        self,
        progress: DeliveryProgress,
        trouble: Trouble,
        notice: Callable[[str], None],
        aborted: threading.Event,
        policy: RetryPolicy,
        places: Whereabouts,
    ) -> None:
        self._progress = progress
        self._trouble = trouble
        self._notice = notice
        self._aborted = aborted
        self._policy = policy
        self._places = places
        # The first failure that dropped a call (or kept the run from starting); the exit names it.
        self.failed: str | None = None
        self.last_dropped: str | None = None  # why the latest dropped call was (Artifact.wait() says it)
        self._retry_since = 0.0  # when the current run of failures began (0: none)

    def deliver(self, call: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> bool:
        """call(*args, **kwargs) until it works; False if it cannot (said once) or the run is
        aborted. A failure that may pass is retried with backoff; any other drops the call."""
        attempt = 0
        while True:
            if self._aborted.is_set():
                return False
            self._progress.call_started = time.monotonic()
            try:
                call(*args, **kwargs)
            except Exception as exc:
                self._progress.call_started = 0.0
                if not is_transient(exc):
                    self._drop(exc)
                    return False
                attempt += 1
                if not self.backoff(exc, attempt):
                    return False
                continue
            self._progress.call_started = 0.0
            if self._retry_since:
                self.recovered()
            return True

    def backoff(self, exc: BaseException, attempt: int) -> bool:
        """After `attempt` failures that may pass (the last: exc), say so (once) and wait before
        the next try; False if the run was aborted meanwhile."""
        self._retrying(exc)
        return not self._aborted.wait(self._policy.delay(attempt))

    def _retrying(self, exc: BaseException) -> None:
        """A delivery failed for a reason that may pass: said once, until it works again."""
        logger.debug("nbtrack: %s failed a write; retrying", self._places.destination(), exc_info=exc)
        if self._retry_since:
            return
        self._retry_since = time.monotonic()
        self._progress.retrying_store = True
        what = self._places.destination()
        if is_out_of_space(exc):
            # The log may sit on the same full disk: say nothing about where rows wait (the exit
            # result says exactly what is where).
            self._trouble.failing(
                "store", SPACE, f"cannot write {what}: {short_reason(exc)}; waiting for space", what
            )
            return
        kept = " (rows wait in the transaction log meanwhile)" if self._places.log_is_written() else ""
        self._trouble.failing(
            "store",
            "store",
            f"cannot write {what}: {short_reason(exc)}; retrying until it accepts{kept}",
            what,
        )

    def recovered(self) -> None:
        """Calls work again after failures that may pass: said once."""
        seconds = time.monotonic() - self._retry_since
        self._retry_since = 0.0
        self._progress.retrying_store = False
        self._trouble.recovered(
            "store", f"{self._places.destination()} is written again (after {seconds:.0f} s)"
        )

    def _drop(self, exc: BaseException) -> None:
        """A failure retrying cannot fix: the call is dropped, said once (without the traceback)."""
        logger.debug("nbtrack: %s refused a write", self._places.destination(), exc_info=exc)
        self.last_dropped = f"{self._places.destination()} refused a write: {short_reason(exc)}"
        if self.failed is None:
            self.failed = self.last_dropped
            self._notice(f"{self.failed}; {self._places.advice()}")

"""One notice when something stops working, one when it works again: never one per row or retry.

The writer (the log) and the sender (the store) report through one `Trouble`. A full disk is
one cause even when both the log and the store sit on it: the user hears "cannot write ...:
no space left on device; waiting for space" once, and "... written again" once every stage
it stopped can write again.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable

__all__ = ["SPACE", "Trouble", "is_out_of_space", "short_reason"]

SPACE = "space"  # the cause shared by everything on a full disk
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_REASON_CHARS = 200  # a reason is one sentence, not a statement with its parameters


def is_out_of_space(exc: BaseException) -> bool:
    """The disk (or quota) is full: an OSError saying so, or a database that says so."""
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno in _NO_SPACE:
            return True
        if "disk is full" in str(cause) or "No space left" in str(cause):
            return True
    return False


def short_reason(exc: BaseException) -> str:
    """What went wrong in one line: the innermost error's own words, without SQL or parameters."""
    causes = list(_causes(exc))
    inner = causes[-1]
    orig = getattr(inner, "orig", None)  # a SQLAlchemy DBAPIError: the driver's own message
    if isinstance(orig, BaseException):
        inner = orig
    if isinstance(inner, OSError) and inner.errno is not None and inner.strerror:
        return inner.strerror
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else type(inner).__name__
    if len(text) > _REASON_CHARS:
        text = text[: _REASON_CHARS - 1] + "…"
    return text


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


class Trouble:
    """Notices about sources (the log, the store) failing and recovering, one per change of cause."""

    def __init__(self, notice: Callable[[str], None]) -> None:
        self._notice = notice
        self._lock = threading.Lock()
        self._causes: dict[str, set[str]] = {}  # cause -> the sources failing because of it
        self._source_cause: dict[str, str] = {}
        self._names: dict[str, list[str]] = {}  # cause -> what it stopped, in order, while it lasts

    def failing(self, source: str, cause: str, message: str, what: str = "") -> None:
        """source (named `what` to the user) fails because of cause: say message, unless that
        cause was already said."""
        with self._lock:
            if self._source_cause.get(source) == cause:
                return
            self._clear(source)
            self._source_cause[source] = cause
            sources = self._causes.setdefault(cause, set())
            said = bool(sources)
            sources.add(source)
            names = self._names.setdefault(cause, [])
            if what and what not in names:
                names.append(what)
        if not said:
            self._notice(message)

    def recovered(self, source: str, message: str) -> None:
        """source works again: say message once nothing else fails of the same cause (if the
        cause stopped several things, the message names them all)."""
        with self._lock:
            cause = self._source_cause.get(source)
            if cause is None:
                return
            names = self._names.get(cause, [])
            last = self._clear(source)
            if last:
                self._names.pop(cause, None)
        if last:
            self._notice(f"{' and '.join(names)} are written again" if len(names) > 1 else message)

    def _clear(self, source: str) -> bool:
        """Forget source's cause; True if it was the last source failing of that cause."""
        cause = self._source_cause.pop(source, None)
        if cause is None:
            return False
        sources = self._causes.get(cause, set())
        sources.discard(source)
        if not sources:
            self._causes.pop(cause, None)
            return True
        return False

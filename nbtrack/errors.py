"""Every exception nbtrack raises on purpose, in one place.

    NbtrackError                 base of everything below
    ├── UsageError               a call made in the wrong order or with a wrong setting; says what to do
    ├── InternalProcessError     the internal process is gone or did not answer in time
    └── LogFormatError           (also a ValueError; in txlog.py) not a transaction log,
                                 or a format version this nbtrack cannot read

Bad values passed to `log()` or the config raise the built-in TypeError / ValueError, naming the
key and the type, because that is what Python code expects from a bad argument.
"""

from __future__ import annotations

__all__ = ["InternalProcessError", "NbtrackError", "UsageError"]


class NbtrackError(Exception):
    """Base class of nbtrack's own errors."""


class UsageError(NbtrackError):
    """The API was called in a way that cannot work; the message says what to do instead."""


class InternalProcessError(NbtrackError):
    """The run's internal process died or did not answer within the timeout."""

"""Every exception nbtrack raises on purpose, in one tree (a test keeps it complete).

    NbtrackError                 base of everything below
    ├── UsageError               a call made in the wrong order or with a wrong setting; says what to do
    ├── InternalProcessError     the internal process is gone or did not answer in time
    ├── LogFormatError           (also a ValueError; txlog.py) not a transaction log, or a format
    │                            version this nbtrack cannot read
    ├── RunNotFoundError         (also a LookupError; api.py) `Api.run()` of a run the store lacks
    ├── StoreError               the store failed a read or a write; says which
    │   └── ArtifactsError       an artifact request refused: a type clash, an unknown version
    │                            or run, a file missing or not what its manifest says
    ├── StageDied                (worker.py) a stage of the internal process is gone: it is ending
    ├── Transient                (online/retry.py) worth retrying: the server is down or busy
    ├── Rejected                 (online/retry.py) the server refused a request for good
    │   ├── TooLarge             a body over the server's limit (413), with the limit if it said
    │   └── ArtifactFileRefused  (online/artifact_upload.py) an artifact's file the server refused
    │                            (or that is gone here), naming the file
    └── ApiError                 (server/errors.py) a GraphQL or HTTP error the server answers with

Bad values passed to `log()` or the config raise the built-in TypeError / ValueError, naming the
key and the type, because that is what Python code expects from a bad argument.
"""

from __future__ import annotations

__all__ = ["ArtifactsError", "InternalProcessError", "NbtrackError", "StoreError", "UsageError"]


class NbtrackError(Exception):
    """Base class of nbtrack's own errors."""


class UsageError(NbtrackError):
    """The API was called in a way that cannot work; the message says what to do instead."""


class InternalProcessError(NbtrackError):
    """The run's internal process died or did not answer within the timeout."""


class StoreError(NbtrackError):
    """The database refused or failed an operation (locked too long, unreachable, corrupt)."""


class ArtifactsError(StoreError):
    """A request the artifact tables refuse (a type clash, an unknown version), or an artifact's
    file missing or not what its manifest says: says which. Defined here, not in store/, so the
    SDK's artifact modules raise it without loading the store (SQLAlchemy)."""
